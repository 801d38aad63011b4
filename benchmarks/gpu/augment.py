"""Augmentation images/s on one device: augflat's batched AugMix, RandAugment and PixMix against torchvision's v2
AugMix and RandAugment, at 32 px (CIFAR-10) and 64 px (TinyImageNet), on the same real images.

    python benchmarks/gpu/augment.py [--device cuda] [--batch 512] [--repeats 5] [--json FILE]

augflat draws every image's operations independently within one batched call. torchvision v2 draws one set of
operations per call, so it is timed two ways: one call per image (per-image randomness, as augflat; a loop over the
batch on the device) and one call on the whole batch (every image gets the same operations: not the same
augmentation, shown for scale). Each timing runs after a warm-up call and synchronizes the device."""
from __future__ import annotations
import argparse, json, sys, time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
import torch
from augflat.core import get_device, env_info
from augflat.data import load_dataset, subset_per_class
from augflat.augment.registry import get_augmentation

def _sync(dev):
    if dev.type == 'cuda': torch.cuda.synchronize(dev)

def timed(fn, x, dev, repeats: int) -> float:
    "images/s of fn(x) over `repeats` calls after one warm-up call."
    fn(x); _sync(dev)
    t0 = time.perf_counter()
    for _ in range(repeats): fn(x)
    _sync(dev)
    return repeats * len(x) / (time.perf_counter() - t0)

def run(device: str, batch: int, repeats: int, per_image_n: int) -> list:
    from torchvision.transforms import v2
    dev = torch.device(device); rows = []
    for size, dataset in ((32, 'cifar10'), (64, 'tinyimagenet')):
        ds = load_dataset(dataset, 'test')
        x = subset_per_class(ds, max(1, batch // ds.num_classes + 1), seed=0).x[:batch].to(dev)
        for name in ('augmix', 'randaug', 'pixmix'):
            aug = get_augmentation(name); g = torch.Generator(device=dev).manual_seed(0)
            rows.append(dict(size=size, impl='augflat (batched, per-image draws)', aug=name,
                             images_per_s=timed(lambda b: aug(b, generator=g), x, dev, repeats)))
        for name, tv in (('augmix', v2.AugMix()), ('randaug', v2.RandAugment(num_ops=2, magnitude=9))):
            xs = x[:per_image_n]
            rows.append(dict(size=size, impl='torchvision v2, one call per image', aug=name,
                             images_per_s=timed(lambda b: [tv(im) for im in b], xs, dev, max(1, repeats // 2))))
            rows.append(dict(size=size, impl='torchvision v2, one call per batch (same ops for all)', aug=name,
                             images_per_s=timed(tv, x, dev, repeats)))
        for r in rows[-7:]: print(f"augment {r['size']:>2} px {r['aug']:<8} {r['impl']:<52} {r['images_per_s']:>10.0f} img/s", flush=True)
    return rows

if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--device', default=None); ap.add_argument('--batch', type=int, default=512)
    ap.add_argument('--repeats', type=int, default=5); ap.add_argument('--per-image-n', type=int, default=128)
    ap.add_argument('--json', default=None)
    a = ap.parse_args()
    dev = str(get_device(a.device))
    rows = run(dev, a.batch, a.repeats, a.per_image_n)
    if a.json: Path(a.json).write_text(json.dumps(dict(env=env_info(dev), rows=rows), indent=1))
