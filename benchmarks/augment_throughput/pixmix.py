"""Throughput of augflat's batched PixMix against a per-image Pillow/numpy implementation of the original algorithm
(andyzoujm/pixmix `pixmix()` + `augment_input` + `mixings.py`), on the same real CIFAR-10 images and the same mixing
pictures (augflat's IFS fractals, resized to 36 px and randomly cropped to 32 as the original's mixing-set transform),
in the same run.

    python benchmarks/augment_throughput/pixmix.py [--n 1024] [--threads 1] [--batch 512] [--repeats 3] [--device cpu] [--out FILE]

The reference runs one image at a time, the way a DataLoader worker runs the original: the AugMix ops are Pillow's
(shared with run.py), the mixing is numpy float32, and the conversion from and back to uint8 is included on both sides.
"""
from __future__ import annotations
import sys
from pathlib import Path
import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import _pil_augmix_ops, cifar_images, base_parser, time_case, finish  # noqa: E402  (shared with run.py)

# ---------------------------------------------------------------- per-image reference: PixMix (original algorithm)
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

def main(argv=None):
    p = base_parser(1024, 'torch threads for both sides (default 1; see README)')
    p.add_argument('--fractals', type=int, default=200, help='number of IFS mixing pictures (default 200, cached)')
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    from augflat.augment.pixmix import PixMix
    x = cifar_images(a.n)
    ours = PixMix(k=4, beta=3, severity=3, all_ops=True, n_fractals=a.fractals)
    pics = ours.pictures(x.shape[-1]).permute(0, 2, 3, 1).numpy()     # the same mixing pictures for both sides
    ours.pictures(x.shape[-1], torch.device(a.device))
    _, ops_all = _pil_augmix_ops(x.shape[-1])
    result = time_case('PixMix', ours, lambda arr, rng: pil_pixmix(arr, pics, rng, ops_all), x, a)
    return finish(a, x, {'PixMix': result}, n_fractals=a.fractals)

if __name__ == '__main__':
    main()
