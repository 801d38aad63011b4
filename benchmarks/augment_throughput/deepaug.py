"""Generation speed of DeepAugment's cached copies (`deepaugment_copy`, what training with `--aug deepaug` makes once per
dataset and seed) per source, and of StyleAug per batch for comparison, on real images.

    python benchmarks/augment_throughput/deepaug.py [--n 200] [--sizes 32,64] [--threads 1,2] [--out FILE]

The CAE here has untrained weights of the real architecture (the speed does not depend on the weights; training
augflat's own CAE first would add minutes). Rates are images per second over the whole copy, median of `--repeats`."""
from __future__ import annotations
import argparse, json, os, statistics, sys, time
from pathlib import Path
import torch

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--n', type=int, default=200, help='real images per size (default 200)')
    p.add_argument('--sizes', default='32,64'); p.add_argument('--threads', default='1,2')
    p.add_argument('--repeats', type=int, default=2); p.add_argument('--device', default='cpu')
    p.add_argument('--out', default=None)
    a = p.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from run import bench_images
    from augflat.core import make_generator
    from augflat.augment.deepaug import CAE, DeepAugment, deepaugment_copy
    from augflat.augment.styleaug import StyleAug
    rows = []
    for size in [int(s) for s in a.sizes.split(',')]:
        x = bench_images(a.n, size)
        for threads in [int(t) for t in a.threads.split(',')]:
            torch.set_num_threads(threads)
            da = DeepAugment(sources=('cae', 'noise2net'), cae=CAE().eval())
            style = StyleAug()
            impls = {f'deepaug copy ({s})': (lambda s=s: deepaugment_copy(x, source=s, aug=da, device=a.device)) for s in da.sources}
            xd = x.to(a.device)
            impls['styleaug per batch of 128'] = lambda: [style(xd[i:i + 128], generator=make_generator(0, a.device)) for i in range(0, len(xd), 128)]
            rates = {k: [] for k in impls}
            for f in impls.values(): f()
            for _ in range(a.repeats):
                for k, f in impls.items():
                    t0 = time.perf_counter(); f(); rates[k].append(len(x) / (time.perf_counter() - t0))
            r = dict(size=size, threads=threads, img_s={k: round(statistics.median(v)) for k, v in rates.items()})
            rows.append(r)
            print(f"{size} px {threads} thr: " + ', '.join(f"{k} {v:,} img/s" for k, v in r['img_s'].items()), flush=True)
    info = dict(n_images=a.n, device=a.device, load_avg_end=[round(v, 2) for v in os.getloadavg()], torch=torch.__version__,
                date=time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime()), results=rows)
    print(json.dumps(info))
    if a.out:
        from augflat.core import write_json
        write_json(a.out, info)

if __name__ == '__main__':
    main()
