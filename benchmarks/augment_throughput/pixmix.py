"""Per-image PixMix references for `run.py`: the original andyzoujm/pixmix algorithm (`pixmix()` + `augment_input` +
`mixings.py`) one image at a time, built from torchvision.transforms.v2.functional ops on uint8 tensors (`tv_pixmix`)
and from Pillow + numpy (`pil_pixmix`), with a random 32-of-36-px crop of a mixing picture per image as the original's
mixing-set transform.

    python benchmarks/augment_throughput/pixmix.py [run.py options]      # run.py --augs pixmix
"""
from __future__ import annotations
import math, random, sys
from pathlib import Path
import numpy as np
import torch
from PIL import Image

# ---------------------------------------------------------------- the original's mixing (both references)
def _get_ab(rng, beta):
    if rng.random() < 0.5:
        a, b = np.float32(rng.beta(beta, 1)), np.float32(rng.beta(1, beta))
    else:
        a, b = 1 + np.float32(rng.beta(1, beta)), -np.float32(rng.beta(1, beta))
    return a, b

def _add(img1, img2, beta, rng):
    a, b = _get_ab(rng, beta)
    return (a * (img1 * 2 - 1) + b * (img2 * 2 - 1) + 1) / 2

def _multiply(img1, img2, beta, rng):
    a, b = _get_ab(rng, beta)
    with np.errstate(over='ignore'):
        return ((img1 * 2) ** a * np.clip(img2 * 2, 1e-37, None) ** b) / 2

# ---------------------------------------------------------------- Pillow + numpy
def pil_pixmix(arr: np.ndarray, pics: np.ndarray, rng, ops, k=4, beta=3, severity=3) -> np.ndarray:
    "PixMix on one HWC uint8 image with a random mixing picture (36 px, random 32 px crop) from `pics` (N,36,36,3)."
    h, w = arr.shape[:2]
    pic = pics[rng.integers(len(pics))]
    oy, ox = rng.integers(pic.shape[0] - h + 1), rng.integers(pic.shape[1] - w + 1)
    mixing_pic = pic[oy:oy + h, ox:ox + w].astype(np.float32) / 255
    img = Image.fromarray(arr)
    def aug(): return np.asarray(ops[rng.integers(len(ops))](img.copy(), severity, rng), np.float32) / 255
    mixed = aug() if rng.random() < 0.5 else arr.astype(np.float32) / 255
    for _ in range(rng.integers(k + 1)):
        partner = aug() if rng.random() < 0.5 else mixing_pic
        mixed = (_add if rng.random() < 0.5 else _multiply)(mixed, partner, beta, rng)
        mixed = np.clip(mixed, 0, 1)
    return np.clip(np.rint(mixed * 255), 0, 255).astype(np.uint8)

# ---------------------------------------------------------------- torchvision.transforms.v2.functional
def _tv_ops(size: int):
    "The original's 13 AugMix ops (PixMix's `aug`, all ops) as torchvision functional ops on one uint8 CHW tensor."
    import torchvision.transforms.v2.functional as TF
    from torchvision.transforms import InterpolationMode
    BIL = InterpolationMode.BILINEAR
    def level(rng, sev): return rng.uniform(0.1, sev)
    def signed(rng, v): return -v if rng.random() > 0.5 else v
    def shear(axis):
        def f(img, sev, rng):
            deg = math.degrees(math.atan(signed(rng, level(rng, sev) * 0.3 / 10)))
            return TF.affine(img, angle=0.0, translate=[0, 0], scale=1.0, shear=[deg, 0.0] if axis == 0 else [0.0, deg], interpolation=BIL)
        return f
    def translate(axis):
        def f(img, sev, rng):
            t = signed(rng, int(level(rng, sev) * size / 3 / 10))
            return TF.affine(img, angle=0.0, translate=[t, 0] if axis == 0 else [0, t], scale=1.0, shear=[0.0, 0.0], interpolation=BIL)
        return f
    def enhance(fn):
        return lambda img, sev, rng: fn(img, level(rng, sev) * 1.8 / 10 + 0.1)
    return [lambda img, sev, rng: TF.autocontrast(img), lambda img, sev, rng: TF.equalize(img),
            lambda img, sev, rng: TF.posterize(img, 4 - int(level(rng, sev) * 4 / 10)),
            lambda img, sev, rng: TF.rotate(img, signed(rng, int(level(rng, sev) * 30 / 10)), interpolation=BIL),
            lambda img, sev, rng: TF.solarize(img, 256 - int(level(rng, sev) * 256 / 10)),
            shear(0), shear(1), translate(0), translate(1),
            enhance(TF.adjust_saturation), enhance(TF.adjust_contrast), enhance(TF.adjust_brightness), enhance(TF.adjust_sharpness)]

_TV_OPS = {}

def tv_pixmix(img: torch.Tensor, pics: torch.Tensor, rng: random.Random, k=4, beta=3, severity=3) -> torch.Tensor:
    "PixMix on one uint8 CHW tensor from torchvision ops; mixing picture: a random crop of one of `pics` (N×3×S×S)."
    h, w = img.shape[-2:]
    ops = _TV_OPS.setdefault(w, _tv_ops(w))
    pic = pics[rng.randrange(len(pics))]
    oy, ox = rng.randrange(pic.shape[-2] - h + 1), rng.randrange(pic.shape[-1] - w + 1)
    mixing_pic = pic[:, oy:oy + h, ox:ox + w].float() / 255
    def aug(): return ops[rng.randrange(len(ops))](img, severity, rng).float() / 255
    def ab():
        if rng.random() < 0.5: return rng.betavariate(beta, 1), rng.betavariate(1, beta)
        return 1 + rng.betavariate(1, beta), -rng.betavariate(1, beta)
    mixed = aug() if rng.random() < 0.5 else img.float() / 255
    for _ in range(rng.randint(0, k)):
        partner = aug() if rng.random() < 0.5 else mixing_pic
        a, b = ab()
        if rng.random() < 0.5: mixed = (a * (mixed * 2 - 1) + b * (partner * 2 - 1) + 1) / 2
        else: mixed = ((mixed * 2) ** a * (partner * 2).clamp_min(1e-37) ** b) / 2
        mixed = mixed.clamp(0, 1)
    return (mixed * 255).round().to(torch.uint8)

if __name__ == '__main__':
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from run import main
    main(['--augs', 'pixmix', *sys.argv[1:]])
