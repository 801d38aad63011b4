"""Throughput of augflat's batched AugMix and RandAugment against a per-image Pillow implementation of the same
original algorithms, on the same real CIFAR-10 images, in the same run.

    python benchmarks/augment_throughput/run.py [--n 2048] [--threads 2] [--repeats 3] [--device cpu] [--out FILE]

The per-image references below are written from the original algorithms (google-research/augmix `aug()` +
`augmentations.py`; torchvision's RandAugment on PIL images), one image at a time with Pillow and numpy, the way a
DataLoader worker would run them. Both sides get the same uint8 images and the same torch thread count; the reference
includes the PIL conversion both ways (the batched side starts from and returns uint8 tensors)."""
from __future__ import annotations
import argparse, io, json, math, os, sys, time, zipfile
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

# ---------------------------------------------------------------- data and timing
def cifar_images(n: int) -> torch.Tensor:
    "The first `n` CIFAR-10 training images (augflat.data when available, else straight from the zip)."
    try:
        from augflat.data import load_dataset
        return load_dataset('cifar10', 'train').x[:n].contiguous()
    except Exception as e:  # noqa: BLE001 - fall back to the raw zip
        from augflat.core import data_roots
        for root in data_roots():
            if (root / 'cifar10.zip').exists():
                with zipfile.ZipFile(root / 'cifar10.zip') as z:
                    names = sorted(m for m in z.namelist() if m.startswith('cifar10/train/') and m.endswith('.jpg'))[:: 50000 // n][:n]
                    arr = [np.asarray(Image.open(io.BytesIO(z.read(m))).convert('RGB')) for m in names]
                return torch.from_numpy(np.stack(arr)).permute(0, 3, 1, 2).contiguous()
        raise SystemExit(f"CIFAR-10 not found ({e}); put cifar10.zip in a data root (see augflat.core.data_roots)")

def best_rate(fn, n_images, repeats):
    "Best images/second over `repeats` runs (the least disturbed one on a shared machine)."
    best = 0.0
    for _ in range(repeats):
        t0 = time.perf_counter(); fn(); dt = time.perf_counter() - t0
        best = max(best, n_images / dt)
    return best

def base_parser(default_n: int, threads_help: str) -> argparse.ArgumentParser:
    "The options every augmentation-throughput benchmark shares."
    p = argparse.ArgumentParser(description=sys.modules['__main__'].__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--n', type=int, default=default_n, help=f'number of real CIFAR-10 images (default {default_n})')
    p.add_argument('--threads', type=int, default=1, help=threads_help)
    p.add_argument('--repeats', type=int, default=3, help='timed repeats; the best is reported (default 3)')
    p.add_argument('--device', default='cpu', help="device for the batched side: 'cpu' or 'cuda' (default cpu)")
    p.add_argument('--batch', type=int, default=512, help='batch size for the batched side (default 512)')
    p.add_argument('--out', default=None, help='optional JSON file for the results')
    return p

def time_case(name, ours, ref, x, a) -> dict:
    "Best rates of `ours` (batched on `a.device`, per-sample generator) and `ref(arr, rng)` (per image) on `x`."
    from augflat.core import make_generator
    dev = torch.device(a.device); xd = x.to(dev); arrs = list(x.permute(0, 2, 3, 1).numpy())
    g = make_generator(0, dev)
    def batched():
        for i in range(0, len(xd), a.batch): ours(xd[i:i + a.batch], generator=g)
        if dev.type == 'cuda': torch.cuda.synchronize()
    rng = np.random.default_rng(0)
    def per_image(): return [ref(arr, rng) for arr in arrs]
    batched()   # warm-up (allocations, CUDA kernels)
    r_ours, r_pil = best_rate(batched, len(x), a.repeats), best_rate(per_image, len(x), a.repeats)
    print(f"{name:12s} batched ({dev.type}) {r_ours:9.0f} img/s | per-image PIL {r_pil:8.0f} img/s | ratio {r_ours / r_pil:5.2f}x")
    return dict(batched_img_s=round(r_ours), pil_per_image_img_s=round(r_pil), ratio=round(r_ours / r_pil, 2))

def finish(a, x, results: dict, **extra) -> dict:
    "Print the run's JSON record and write it to `a.out` when asked."
    info = dict(n_images=len(x), image_size=x.shape[-1], threads=a.threads, batch=a.batch, device=str(torch.device(a.device)),
                **extra, cpu_count=os.cpu_count(), load_avg=os.getloadavg(), torch=torch.__version__, results=results)
    print(json.dumps(info))
    if a.out:
        from augflat.core import write_json
        write_json(a.out, info)
    return info

def main(argv=None):
    a = base_parser(2048, 'torch threads for the batched side; the Pillow side is single-threaded (default 1)').parse_args(argv)
    torch.set_num_threads(a.threads)
    from augflat.augment.augmix import AugMix
    from augflat.augment.randaug import RandAugment
    x = cifar_images(a.n)
    ops9, _ = _pil_augmix_ops(x.shape[-1])
    cases = [('AugMix', AugMix(), lambda arr, rng: pil_augmix(arr, rng, ops9)),
             ('RandAugment', RandAugment(), lambda arr, rng: pil_randaugment(arr, rng))]
    return finish(a, x, {name: time_case(name, ours, ref, x, a) for name, ours, ref in cases})

if __name__ == '__main__':
    main()
