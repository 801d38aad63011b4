"""Throughput of augflat's batched AugMix, RandAugment and PixMix against the per-image implementations a user would
otherwise run, on the same real images, in the same run, alternating, as ratios.

    python benchmarks/augment_throughput/run.py                      # the full grid, about 4 minutes on 2 idle cores
    python benchmarks/augment_throughput/run.py --sizes 32 --threads 1 --augs augmix --repeats 3 --out result.json

Peers, each applied one image at a time the way a DataLoader worker runs it (timed on its native input, so the
conversions to and from PIL/tensors are left out of the peers' time, in their favour):
* AugMix: torchvision's `transforms.v2.AugMix()` on uint8 CHW tensors; timm's `augment_and_mix_transform('augmix-m3-w3')`
  on PIL images; the original google-research/augmix `aug()` on Pillow, written below (`pil_augmix`).
* RandAugment: torchvision's `transforms.v2.RandAugment()` (N=2, M=9) on uint8 tensors; timm's
  `rand_augment_transform('rand-m9-n2-mstd0-p1.0')` on PIL images (every layer applied, the same work as
  torchvision's and ours) and timm at its default (each layer with p=0.5: on average one op per image); torchvision's
  algorithm on Pillow, written below (`pil_randaugment`).
* PixMix: the original andyzoujm/pixmix algorithm per image from torchvision.transforms.v2.functional ops (`pixmix.py`,
  `tv_pixmix`) and from Pillow + numpy (`pil_pixmix`), with the same mixing pictures as augflat's.
Grid: image sizes 32 (CIFAR-10 train) and 64 px (TinyImageNet train), 1 and 2 torch threads, batches 256 and 1,024 for
augflat. Each repeat times every implementation once, in turn; the reported rate is the median over repeats and each
ratio is the median of the per-repeat ratios (augflat's rate / the peer's rate measured next to it)."""
from __future__ import annotations
import argparse, json, os, random, statistics, sys, time
from pathlib import Path
import numpy as np
import torch
from PIL import Image, ImageOps, ImageEnhance

# ---------------------------------------------------------------- per-image Pillow reference: AugMix (original)
def _ip(level, maxval): return int(level * maxval / 10)
def _fp(level, maxval): return float(level) * maxval / 10
def _sample_level(rng, n): return rng.uniform(low=0.1, high=n)

def _pil_augmix_ops(size):
    def autocontrast(img, _): return ImageOps.autocontrast(img)
    def equalize(img, _): return ImageOps.equalize(img)
    def posterize(img, lv, rng): return ImageOps.posterize(img, 4 - _ip(_sample_level(rng, lv), 4))
    def rotate(img, lv, rng):
        d = _ip(_sample_level(rng, lv), 30)
        return img.rotate(-d if rng.uniform() > 0.5 else d, resample=Image.BILINEAR)
    def solarize(img, lv, rng): return ImageOps.solarize(img, 256 - _ip(_sample_level(rng, lv), 256))
    def shear(axis):
        def f(img, lv, rng):
            s = _fp(_sample_level(rng, lv), 0.3); s = -s if rng.uniform() > 0.5 else s
            return img.transform((size, size), Image.AFFINE, (1, s, 0, 0, 1, 0) if axis == 0 else (1, 0, 0, s, 1, 0), resample=Image.BILINEAR)
        return f
    def translate(axis):
        def f(img, lv, rng):
            t = _ip(_sample_level(rng, lv), size / 3); t = -t if rng.random() > 0.5 else t
            return img.transform((size, size), Image.AFFINE, (1, 0, t, 0, 1, 0) if axis == 0 else (1, 0, 0, 0, 1, t), resample=Image.BILINEAR)
        return f
    def enhance(E):
        def f(img, lv, rng): return E(img).enhance(_fp(_sample_level(rng, lv), 1.8) + 0.1)
        return f
    ops = [lambda i, l, r: autocontrast(i, l), lambda i, l, r: equalize(i, l), posterize, rotate, solarize,
           shear(0), shear(1), translate(0), translate(1)]
    return ops, ops + [enhance(E) for E in (ImageEnhance.Color, ImageEnhance.Contrast, ImageEnhance.Brightness, ImageEnhance.Sharpness)]

def pil_augmix(arr: np.ndarray, rng, ops, severity=3, width=3, depth=-1, alpha=1.0) -> np.ndarray:
    "google-research/augmix `aug()` on one HWC uint8 image; mixing in float like the original, uint8 out."
    img = Image.fromarray(arr)
    ws = np.float32(rng.dirichlet([alpha] * width)); m = np.float32(rng.beta(alpha, alpha))
    mix = np.zeros(arr.shape, np.float32)
    for i in range(width):
        im = img.copy()
        for _ in range(depth if depth > 0 else rng.integers(1, 4)):
            im = ops[rng.integers(len(ops))](im, severity, rng)
        mix += ws[i] * np.asarray(im, np.float32)
    out = (1 - m) * arr.astype(np.float32) + m * mix
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)

# ---------------------------------------------------------------- per-image Pillow reference: RandAugment (torchvision)
def pil_randaugment(arr: np.ndarray, rng, num_ops=2, magnitude=9, bins=31) -> np.ndarray:
    "torchvision.transforms.RandAugment's algorithm on one PIL image (its ops are Pillow's for PIL input)."
    img = Image.fromarray(arr); w, h = img.size
    frac = magnitude / (bins - 1)
    for _ in range(num_ops):
        op = rng.integers(14); sign = -1 if rng.integers(2) else 1
        if op == 0: pass
        elif op in (1, 2):
            s = sign * 0.3 * frac
            img = img.transform(img.size, Image.AFFINE, (1, s, 0, 0, 1, 0) if op == 1 else (1, 0, 0, s, 1, 0), Image.NEAREST)
        elif op in (3, 4):
            t = sign * int(150 / 331 * (w if op == 3 else h) * frac)
            img = img.transform(img.size, Image.AFFINE, (1, 0, -t, 0, 1, 0) if op == 3 else (1, 0, 0, 0, 1, -t), Image.NEAREST)
        elif op == 5: img = img.rotate(sign * 30 * frac, resample=Image.NEAREST)
        elif op in (6, 7, 8, 9):
            E = (ImageEnhance.Brightness, ImageEnhance.Color, ImageEnhance.Contrast, ImageEnhance.Sharpness)[op - 6]
            img = E(img).enhance(1 + sign * 0.9 * frac)
        elif op == 10: img = ImageOps.posterize(img, int(8 - round(magnitude / ((bins - 1) / 4))))
        elif op == 11: img = ImageOps.solarize(img, 255 * (1 - frac))
        elif op == 12: img = ImageOps.autocontrast(img)
        else: img = ImageOps.equalize(img)
    return np.asarray(img)


# ---------------------------------------------------------------- peers from torchvision and timm
def peer_transforms(size: int) -> dict:
    "The installed libraries' per-image transforms, by name (absent libraries are left out with a note)."
    peers = {}
    try:
        import torchvision.transforms.v2 as T
        peers['tv_augmix'], peers['tv_randaug'] = T.AugMix(), T.RandAugment()
    except ImportError as e: print(f"torchvision v2 not available ({e}): its columns are left out")
    try:
        from timm.data.auto_augment import augment_and_mix_transform, rand_augment_transform
        # timm's create_transform hyper-parameters for this size; a fresh dict each (timm writes defaults into it)
        hp = lambda **kw: dict(translate_const=int(size * 0.45), img_mean=(124, 116, 104), **kw)
        peers['timm_augmix'] = augment_and_mix_transform('augmix-m3-w3', hp(translate_pct=0.3))
        peers['timm_randaug'] = rand_augment_transform('rand-m9-n2-mstd0-p1.0', hp())
        peers['timm_randaug_p05'] = rand_augment_transform('rand-m9-n2-mstd0', hp())
    except ImportError as e: print(f"timm not available ({e}): its columns are left out (pip install timm)")
    return peers

# ---------------------------------------------------------------- data and timing
def bench_images(n: int, size: int) -> torch.Tensor:
    "`n` real training images: CIFAR-10 at 32 px, TinyImageNet at 64 px (uint8 N×3×H×W)."
    from augflat.data import load_dataset
    name = {32: 'cifar10', 64: 'tinyimagenet'}.get(size)
    if name is None: raise SystemExit(f"--sizes takes 32 (CIFAR-10) and/or 64 (TinyImageNet), got {size}")
    ds = load_dataset(name, 'train')
    if len(ds) < n: raise SystemExit(f"{name} has {len(ds)} training images, fewer than --n {n}")
    return ds.x[torch.linspace(0, len(ds) - 1, n).long()].contiguous()

def cifar_images(n: int) -> torch.Tensor:
    "The first `n` CIFAR-10 training images."
    return bench_images(n, 32)

def _seconds(fn) -> float:
    t0 = time.perf_counter(); fn(); return time.perf_counter() - t0

def cases(aug_names, x: torch.Tensor, a) -> dict:
    "name -> {impl: callable over all of `x`} for every augmentation; augflat's impls are 'augflat@B' for each batch B."
    from augflat.core import make_generator
    from augflat.augment.augmix import AugMix
    from augflat.augment.randaug import RandAugment
    from augflat.augment.pixmix import PixMix
    from pixmix import pil_pixmix, tv_pixmix
    size, dev = x.shape[-1], torch.device(a.device)
    xd, tensors = x.to(dev), list(x)
    pils = [Image.fromarray(arr) for arr in x.permute(0, 2, 3, 1).numpy()]
    arrs = list(x.permute(0, 2, 3, 1).numpy())
    rng, g = np.random.default_rng(0), make_generator(0, dev)
    peers = peer_transforms(size)
    def batched(aug, bs):
        def run():
            for i in range(0, len(xd), bs): aug(xd[i:i + bs], generator=g)
            if dev.type == 'cuda': torch.cuda.synchronize()
        return run
    def per_tensor(t): return lambda: [t(im) for im in tensors]
    def per_pil(t): return lambda: [t(im) for im in pils]
    out = {}
    for name in aug_names:
        if name == 'augmix':
            ours = AugMix()
            ops9, _ = _pil_augmix_ops(size)
            ref = {'torchvision': per_tensor(peers['tv_augmix']) if 'tv_augmix' in peers else None,
                   'timm': per_pil(peers['timm_augmix']) if 'timm_augmix' in peers else None,
                   'own Pillow ref': lambda: [pil_augmix(arr, rng, ops9) for arr in arrs]}
        elif name == 'randaug':
            ours = RandAugment()
            ref = {'torchvision': per_tensor(peers['tv_randaug']) if 'tv_randaug' in peers else None,
                   'timm': per_pil(peers['timm_randaug']) if 'timm_randaug' in peers else None,
                   'timm p=0.5 (its default)': per_pil(peers['timm_randaug_p05']) if 'timm_randaug_p05' in peers else None,
                   'own Pillow ref': lambda: [pil_randaugment(arr, rng) for arr in arrs]}
        elif name == 'pixmix':
            ours = PixMix(k=4, beta=3, severity=3, all_ops=True, n_fractals=a.fractals)
            pics = ours.pictures(size)                                   # the same mixing pictures for every side
            ours.pictures(size, dev)
            pics_np = pics.permute(0, 2, 3, 1).numpy()
            _, ops_all = _pil_augmix_ops(size)
            prng = random.Random(0)
            ref = {'torchvision': lambda: [tv_pixmix(t, pics, prng) for t in tensors],
                   'own Pillow ref': lambda: [pil_pixmix(arr, pics_np, rng, ops_all) for arr in arrs]}
        else: raise SystemExit(f"unknown --augs entry {name!r}: choose from augmix, randaug, pixmix")
        impls = {f'augflat@{bs}': batched(ours, bs) for bs in a.batches}
        impls.update({k: v for k, v in ref.items() if v is not None})
        out[name] = impls
    return out

def measure(impls: dict, n: int, repeats: int) -> dict:
    "Median rate of each impl and median per-repeat ratio of each augflat batch size to each peer (alternating runs)."
    for k, fn in impls.items():             # warm-up of augflat's side: allocations, lazily built tables and maps
        if k.startswith('augflat@'): fn()
    rates = {k: [] for k in impls}
    for _ in range(repeats):
        for k, fn in impls.items(): rates[k].append(n / _seconds(fn))
    ours = [k for k in impls if k.startswith('augflat@')]
    peers = [k for k in impls if not k.startswith('augflat@')]
    res = {'img_s': {k: round(statistics.median(v)) for k, v in rates.items()}, 'ratio': {}}
    for o in ours:
        res['ratio'][o] = {p: round(statistics.median(a / b for a, b in zip(rates[o], rates[p])), 2) for p in peers}
    return res

def base_parser(default_n: int, threads_help: str) -> argparse.ArgumentParser:
    "The options of the augmentation-throughput benchmark."
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--n', type=int, default=default_n, help=f'real images per size, the same for every implementation (default {default_n})')
    p.add_argument('--sizes', default='32,64', help='image sizes: 32 (CIFAR-10), 64 (TinyImageNet) (default 32,64)')
    p.add_argument('--threads', default='1,2', help=threads_help)
    p.add_argument('--batches', default='256,1024', help="augflat's batch sizes (default 256,1024)")
    p.add_argument('--augs', default='augmix,randaug,pixmix', help='augmentations (default augmix,randaug,pixmix)')
    p.add_argument('--repeats', type=int, default=3, help='alternating repeats; medians are reported (default 3)')
    p.add_argument('--device', default='cpu', help="device for augflat's side: 'cpu' or 'cuda' (default cpu)")
    p.add_argument('--fractals', type=int, default=200, help='IFS mixing pictures for PixMix (default 200, cached)')
    p.add_argument('--out', default=None, help='optional JSON file for the results')
    return p

def main(argv=None):
    p = base_parser(1024, "torch thread counts (default 1,2); the per-image peers run in this one process either way")
    a = p.parse_args(argv)
    ints = lambda s: [int(v) for v in str(s).split(',') if v]
    a.batches = ints(a.batches)
    if a.n < max(a.batches): p.error(f"--n {a.n} must be at least the largest batch {max(a.batches)}")
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    results = []
    for size in ints(a.sizes):
        x = bench_images(a.n, size)
        for threads in ints(a.threads):
            torch.set_num_threads(threads)
            for name, impls in cases(a.augs.split(','), x, a).items():
                r = dict(aug=name, size=size, threads=threads, **measure(impls, len(x), a.repeats))
                results.append(r)
                peers = {k: v for k, v in r['ratio'][f'augflat@{a.batches[0]}'].items()}
                line = ' | '.join(f"{o} {r['img_s'][o]:>7,} img/s: " + ', '.join(f"{v:.1f}x {p}" for p, v in r['ratio'][o].items())
                                  for o in r['ratio'])
                print(f"{name:8s} {size} px {threads} thr | {line}", flush=True)
                print(f"{'':8s} peers img/s: " + ', '.join(f"{k} {v:,}" for k, v in r['img_s'].items() if not k.startswith('augflat')), flush=True)
    info = dict(n_images=a.n, repeats=a.repeats, device=str(torch.device(a.device)), n_fractals=a.fractals,
                cpu_count=os.cpu_count(), load_avg_end=[round(v, 2) for v in os.getloadavg()], torch=torch.__version__,
                versions=_versions(), date=time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime()), results=results)
    print(json.dumps(info))
    print(markdown_table(results))
    if a.out:
        from augflat.core import write_json
        write_json(a.out, info)
    return info

def markdown_table(results) -> str:
    """The README's table: augflat's rate per batch size, each peer's rate, and augflat's median ratio to the fastest
    per-image peer of the same run (the target column; for RandAugment timm's p=0.5 default is shown, not targeted:
    it does half the work)."""
    lines = ['| augmentation | px | threads | augflat@256 img/s | augflat@1024 img/s | peers img/s | vs fastest peer (@256 / @1024) |',
             '|---|---:|---:|---:|---:|---|---:|']
    for r in results:
        ours = [k for k in r['img_s'] if k.startswith('augflat@')]
        peers = {k: v for k, v in r['img_s'].items() if not k.startswith('augflat@')}
        rivals = {k: v for k, v in peers.items() if 'p=0.5' not in k and not k.startswith('own ')}
        best = max(rivals, key=rivals.get) if rivals else max(peers, key=peers.get)
        ratios = ' / '.join(f"{r['ratio'][o][best]:.1f}×" for o in ours)
        lines.append(f"| {r['aug']} | {r['size']} | {r['threads']} | " + ' | '.join(f"{r['img_s'][o]:,}" for o in ours)
                     + ' | ' + ', '.join(f"{k} {v:,}" for k, v in peers.items()) + f" | {ratios} ({best}) |")
    return '\n'.join(lines)

def _versions() -> dict:
    import importlib.metadata as md
    out = {}
    for pkg in ('torch', 'torchvision', 'timm', 'pillow', 'numpy'):
        try: out[pkg] = md.version(pkg)
        except md.PackageNotFoundError: out[pkg] = None
    return out

if __name__ == '__main__':
    main()
