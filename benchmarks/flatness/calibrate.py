"""Calibrate the flatness variants against the paper's CIFAR-10 ranges (Table 2).

Trains a small CNN to (near) interpolation on a CIFAR-10 subset (cached under the augflat cache), then measures every
PAC-Bayes / LPF / eps-sharpness variant on a seeded subset of its training images and writes
benchmarks/flatness/calibration.json (loaded and shown by nbs/50_flatness.ipynb).

    python benchmarks/flatness/calibrate.py [--per-class 100] [--epochs 30] [--n-train 500] [--model convnet_small]

CPU-sized on purpose (a few minutes on 2 cores); on a GPU raise --per-class/--epochs/--n-train and use wrn40_2.
"""
import argparse, time, json, math
from pathlib import Path
import sys
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))   # run from a checkout without installing
import torch
from augflat.core import cache_dir, write_json, env_info, AugflatError
from augflat.data import load_dataset, subset_per_class
from augflat.train import train, get_recipe, load_checkpoint
from augflat import flatness as fl

PAPER = dict(pacbayes=(105, 167), lpf=(0.4, 1.1), eps=(7, 20))   # CIFAR-10 WRN-40-2, Table 2 (all six augmentations; DeepAug's 66.9 excluded)

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--model', default='convnet_small'); ap.add_argument('--per-class', type=int, default=100)
    ap.add_argument('--epochs', type=int, default=30); ap.add_argument('--n-train', type=int, default=500)
    ap.add_argument('--batch-size', type=int, default=256); ap.add_argument('--lpf-samples', type=int, default=100)
    ap.add_argument('--pb-max-iter', type=int, default=14); ap.add_argument('--device', default=None)
    ap.add_argument('--train-batch-size', type=int, default=64)
    ap.add_argument('--quick', action='store_true', help='only the main variants (mag_ce, jiang_mag, bisla; eps; LPF)')
    ap.add_argument('--out', default=str(Path(__file__).with_name('calibration.json')))
    a = ap.parse_args(argv)
    torch.set_num_threads(2)
    run = cache_dir('flatness', f'calib_{a.model}_{a.per_class}pc_{a.epochs}ep' + ('' if a.train_batch_size == 64 else f'_bs{a.train_batch_size}'))
    recipe = get_recipe('cifar', epochs=a.epochs, batch_size=a.train_batch_size, lr=0.05, flip=False, crop_pad=0)
    ds = subset_per_class(load_dataset('cifar10', 'train'), a.per_class, seed=0)
    t0 = time.perf_counter()
    ck = run / 'checkpoint.pt'
    done = ck.exists() and torch.load(ck, map_location='cpu', weights_only=False)['epoch'] >= a.epochs
    if not done: train(a.model, ds, recipe, out_dir=run, resume=ck.exists(), progress=False)
    model, meta = load_checkpoint(run, device=a.device or 'cpu')
    train_s = time.perf_counter() - t0
    x, y = fl.train_subset(ds, a.n_train, seed=0)
    prob = fl.NetworkProblem(model, x, y, batch_size=a.batch_size, device=a.device or 'cpu')
    base = prob.base()
    result = dict(config=vars(a) | dict(recipe=meta['recipe'], checkpoint=str(ck), n_params=len(prob.theta)),
                  env=env_info(a.device or 'cpu'), train_loss=base['ce'], train_err=base['err'], paper_ranges=PAPER,
                  rows=[], train_s=train_s,
                  deviations=fl.DEVIATIONS + [f"{a.model} trained {a.epochs} epochs on {10 * a.per_class} CIFAR-10 JPEG images "
                                              "(no augmentation) stands in for WRN-40-2 trained 200 epochs on all 50k",
                                              f"PAC-Bayes search to 1% resolution, at most {a.pb_max_iter} steps, the variants' own draw counts"])
    out = Path(a.out)
    def record(measure, variant, value, extra, secs):
        lo, hi = PAPER[measure]
        row = dict(measure=measure, variant=variant, value=value, in_paper_range=bool(lo <= value <= hi), seconds=secs, **extra)
        result['rows'].append(row); write_json(out, result)
        print(f'{measure:>9} {variant:<22} {value:10.4g}  in range {row["in_paper_range"]}  ({secs:.0f}s)', flush=True)
    pb = dict(max_iter=a.pb_max_iter)
    variants = [('mag_ce', {}), ('jiang_mag', {}), ('bisla', {}), ('jiang', {}),
                ('bisla', dict(noise='absolute')), ('bisla', dict(noise='magnitude'))]
    for variant, over in variants[:3] if a.quick else variants:
        t = time.perf_counter(); r = fl.pacbayes_flatness(prob, variant, **(pb | over))
        name = variant + ''.join(f'[{k}={v}]' for k, v in over.items())
        record('pacbayes', name, r['pacbayes'], dict(sigma=r['pacbayes_sigma'], deviation=r['pacbayes_deviation'], steps=r['pacbayes_steps']), time.perf_counter() - t)
    t = time.perf_counter(); r = fl.eps_sharpness(prob)
    record('eps', 'bisla (normalized)', r['eps'], dict(eta=r['eps_eta']), time.perf_counter() - t)
    for e in () if a.quick else (1e-3, 5e-4):
        t = time.perf_counter(); r = fl.keskar_sharpness(prob, eps=e)
        record('eps', f'keskar eps={e:g}', r['keskar'], {}, time.perf_counter() - t)
    if not a.quick:
        t = time.perf_counter(); r = fl.eps_sharpness(prob, normalized=False)
        record('eps', 'bisla (raw coords)', r['eps'], dict(eta=r['eps_eta']), time.perf_counter() - t)
    t = time.perf_counter(); r = fl.lpf(prob, 0.01, a.lpf_samples)
    record('lpf', 'filter sigma=0.01', r['lpf'], dict(increase=r['lpf_increase']), time.perf_counter() - t)
    result['wall_s'] = time.perf_counter() - t0; write_json(out, result)
    print('train loss', base, 'wall', result['wall_s'])

if __name__ == '__main__': main()
