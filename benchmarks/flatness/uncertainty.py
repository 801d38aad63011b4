"""Cost and Monte-Carlo error of the flatness measures at a preset's settings, against the pre-issue-12 code.

    python benchmarks/flatness/uncertainty.py [--checkpoint DIR] [--preset cpu] [--noise-seeds 0,1]
        [--configs '[{"images_per_draw": 32}]'] [--baseline-ref 9693670] [--threads 1]

Without --checkpoint it trains the cpu preset's CIFAR-10 ERM model (convnet_small, 500 images per class, 6 epochs,
about a minute) into the cache. For each configuration (the preset's flatness settings, updated by each entry of
--configs) and noise seed it measures PAC-Bayes, LPF and eps-sharpness on the preset's n_train training images and
records the values with their uncertainty records, the wall and CPU seconds; --baseline-ref measures the same
checkpoint with augflat/flatness.py as of that git commit at the preset's old settings (5 draws, tol 0.01, 20 LPF
draws). Writes uncertainty.json beside this file.
"""
import argparse, importlib.util, json, os, subprocess, sys, tempfile, time
from pathlib import Path
import torch
from augflat.core import cache_dir, env_info, repo_root, write_json
from augflat.data import load_dataset, subset_per_class
from augflat.reproduce import load_preset, eval_settings
from augflat.train import load_checkpoint, train, get_recipe
from augflat import flatness as fl


def baseline_module(ref):
    "augflat/flatness.py as of git commit `ref`, imported as a stand-alone module."
    src = subprocess.run(['git', 'show', f'{ref}:augflat/flatness.py'], cwd=repo_root(), check=True,
                         capture_output=True, text=True).stdout.replace('from .core import', 'from augflat.core import')
    f = Path(tempfile.mkdtemp()) / 'flatness_baseline.py'; f.write_text(src)
    spec = importlib.util.spec_from_file_location('flatness_baseline', f); mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod); return mod


def timed(fn):
    t, c = time.perf_counter(), time.process_time(); r = fn()
    return r, dict(wall_s=time.perf_counter() - t, cpu_s=time.process_time() - c)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--checkpoint', default=None); ap.add_argument('--preset', default='cpu')
    ap.add_argument('--noise-seeds', default='0,1'); ap.add_argument('--configs', default='[{}]')
    ap.add_argument('--baseline-ref', default=None); ap.add_argument('--threads', type=int, default=1)
    ap.add_argument('--out', default=str(Path(__file__).with_name('uncertainty.json')))
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    cfg = load_preset(a.preset); grp = cfg['cifar']; st = eval_settings(cfg, 'cifar', 'flatness')
    data = subset_per_class(load_dataset(grp['dataset'], 'train'), grp['subset_per_class'], seed=0)
    ck = Path(a.checkpoint) if a.checkpoint else cache_dir() / 'flatness' / f"uncertainty-{a.preset}-erm"
    if not (ck / 'checkpoint.pt').exists() and not ck.is_file():
        train(grp['model'], data, get_recipe('cifar', epochs=grp['epochs'], batch_size=grp['batch_size'], lr=grp['lr']),
              ck, seed=0, device='cpu', progress=False)
    model, meta = load_checkpoint(ck, 'cpu')
    out = dict(checkpoint=str(ck), preset=a.preset, settings=st, env=env_info('cpu'), load_before=os.getloadavg(), runs=[])
    keys = ('pacbayes', 'lpf', 'eps')
    if a.baseline_ref:
        old = baseline_module(a.baseline_ref)
        r, t = timed(lambda: old.evaluate_flatness(model, data, metrics=keys, n_train=st.get('n_train'), seed=0, device='cpu',
                                                   progress=False, pacbayes=dict(n_samples=5, tol=0.01),
                                                   lpf_options=dict(n_samples=20), eps_options=dict(tol=0.01, eta_tol=0.01)))
        out['baseline'] = dict(ref=a.baseline_ref, values={k: r[k] for k in keys}, seconds=r['seconds'], **t)
        print('baseline', json.dumps(out['baseline']), flush=True)
    for over in json.loads(a.configs):
        settings = {**st, **over}
        for ns in [int(s) for s in a.noise_seeds.split(',')]:
            r, t = timed(lambda: fl.evaluate_flatness(model, data, seed=0, noise_seed=ns, device='cpu', progress=False,
                                                      **fl.flatness_kwargs(settings)))
            pb = r['details']['pacbayes']
            run = dict(settings=settings, noise_seed=ns, values={k: r[k] for k in keys}, uncertainty=r['uncertainty'],
                       seconds=r['seconds'], pacbayes_forward_draws=pb['pacbayes_forward_draws'], **t)
            out['runs'].append(run); print(json.dumps(run), flush=True)
    out['load_after'] = os.getloadavg()
    write_json(a.out, out); print(f'wrote {a.out}')


if __name__ == '__main__':
    main()
