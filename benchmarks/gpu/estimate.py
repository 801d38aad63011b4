"""Estimated device time of a preset's training and evaluation jobs from FLOP counts.

    python benchmarks/gpu/estimate.py [--preset gpu] [--train-tflops 20] [--eval-tflops 40] [--json FILE]

FLOPs per image come from `torch.utils.flop_counter.FlopCounterMode` on each model at its resolution (forward +
backward; they match the figures the issue gives: WRN-40-2 1.96, WRN-16-4 2.35, WRN-16-2 0.61 GFLOP per 32-px
image). Each planned model is charged:
- training: epochs (or max_steps) x training images x views x FLOPs, where views is 3 with AugMix's JSD loss and
  2 for FGSM training (one attack step, then the update);
- evaluation (forward = 1/3 of forward+backward): clean + 75 -C + 50 -C-bar images per test image, 295 -P frames
  per test image, PGD steps x 3 per attacked image; flatness: an assumed 100 forward passes over its images for
  PAC-Bayes bisection (15 steps x samples), LPF (its samples) and epsilon-sharpness (about 40 steps).
The augmentations themselves, data generation (-C/-P sets, on the CPU), notebooks, density, theorems and DomainBed
are not counted here: `benchmarks/gpu/run.sh` measures the augmentations' img/s on the device, and the rest is small
at the gpu preset's sizes. The result is only as good as the assumed sustained throughputs, which are stated."""
from __future__ import annotations
import argparse, json, sys
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
import torch
from torch.utils.flop_counter import FlopCounterMode
from augflat.reproduce import load_preset, plan, eval_settings

TRAIN_IMAGES = {'cifar10': 50000, 'cifar100': 50000, 'tinyimagenet': 20000}   # here: TinyImageNet has 100 per class
TEST_IMAGES = {'cifar10': 10000, 'cifar100': 10000, 'tinyimagenet': 10000}
CLASSES = {'cifar10': 10, 'cifar100': 100, 'tinyimagenet': 200}
SIZE = {'cifar10': 32, 'cifar100': 32, 'tinyimagenet': 64}
PGD_STEPS = {'cifar10': 20 + 7, 'cifar100': 20 + 7, 'tinyimagenet': 10 + 5}
P_FRAMES = 295

def flops_per_image(model: str, classes: int, size: int) -> float:
    "Forward + backward FLOPs of one image."
    from augflat.models import get_model
    m = get_model(model, classes); x = torch.rand(2, 3, size, size)
    with FlopCounterMode(display=False) as f: m(x).sum().backward()
    return f.get_total_flops() / 2

def estimate(preset: str, train_tflops: float, eval_tflops: float) -> dict:
    cfg = load_preset(preset)
    rows, cache = [], {}
    for spec, evals in plan(cfg)['models'].items():
        ds = spec.dataset
        key = (spec.model, ds)
        if key not in cache: cache[key] = flops_per_image(spec.model, CLASSES[ds], SIZE[ds])
        f = cache[key]
        n_train = spec.subset_per_class * CLASSES[ds] if spec.subset_per_class else TRAIN_IMAGES[ds]
        views = 3 if spec.jsd else 2 if spec.aug.startswith('fgsm') else 1
        images = min(spec.epochs * n_train, (spec.max_steps or 10 ** 12) * spec.batch_size)
        train_s = images * views * f / (train_tflops * 1e12)
        fwd, eval_s = f / 3, 0.
        if 'robustness' in evals:
            st = evals['robustness']; n = st.get('n') or TEST_IMAGES[ds]; suite = st['suite']
            per = ('clean' in suite) + 75 * ('c' in suite) + 50 * ('cbar' in suite) + P_FRAMES * ('p' in suite)
            pgd_n = min(n, st['pgd_n']) if st.get('pgd_n') else n
            eval_s += (n * per + ('pgd' in suite) * pgd_n * PGD_STEPS[ds] * 3) * fwd / (eval_tflops * 1e12)
        if 'flatness' in evals:
            st = evals['flatness']; n = min(st.get('n_train') or n_train, n_train)
            passes = 15 * st.get('pacbayes_samples', 10) + st.get('lpf_samples', 100) + 40
            eval_s += n * passes * fwd / (eval_tflops * 1e12)
        rows.append(dict(model=spec.key, gflop_per_image=round(f / 1e9, 3), train_s=round(train_s, 1), eval_s=round(eval_s, 1)))
    total = sum(r['train_s'] + r['eval_s'] for r in rows)
    return dict(preset=preset, train_tflops=train_tflops, eval_tflops=eval_tflops, models=rows,
                train_s=round(sum(r['train_s'] for r in rows), 1), eval_s=round(sum(r['eval_s'] for r in rows), 1),
                total_s=round(total, 1))

if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--preset', default='gpu')
    ap.add_argument('--train-tflops', type=float, default=20., help='assumed sustained bf16 training throughput')
    ap.add_argument('--eval-tflops', type=float, default=40., help='assumed sustained bf16 inference throughput')
    ap.add_argument('--json', default=None)
    a = ap.parse_args()
    r = estimate(a.preset, a.train_tflops, a.eval_tflops)
    for m in r['models']: print(f"{m['model']:<55} {m['gflop_per_image']:>7.3f} GFLOP/img  train {m['train_s']:>6.1f} s  eval {m['eval_s']:>6.1f} s")
    print(f"preset {r['preset']}: training {r['train_s']:.0f} s + evaluation {r['eval_s']:.0f} s = {r['total_s']:.0f} s "
          f"({r['total_s'] / 60:.1f} min) at {a.train_tflops:g} / {a.eval_tflops:g} TFLOPS sustained")
    if a.json: Path(a.json).write_text(json.dumps(r, indent=1))
