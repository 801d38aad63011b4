"""Trainer images/s on WRN-40-2 with and without the GPU-resident data path (and with torch.compile).

    python benchmarks/gpu/trainer.py [--device cuda] [--n 20000] [--epochs 2] [--compile] [--json FILE]

Each row trains augflat.train.train on the same real CIFAR-10 images (a class-balanced subset) with the paper's
recipe (batch 128, flip + pad-4 crop; bf16 autocast and channels_last switch on by themselves on CUDA) and reports
the last epoch's images/s (the first includes cuDNN autotuning and, with --compile, compilation). "resident": the
whole set lives on the device and batches are indexed there; "host": each batch is indexed on the host and copied."""
from __future__ import annotations
import argparse, json, sys, tempfile, time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
import torch
from augflat.core import get_device, env_info
from augflat.data import load_dataset, subset_per_class
from augflat.train import train, get_recipe

def run(device: str, n: int, epochs: int, batch_size: int, with_compile: bool, model: str = 'wrn40_2') -> list:
    ds = subset_per_class(load_dataset('cifar10', 'train'), max(1, n // 10), seed=0)
    rows = []
    configs = [('resident', True, False), ('host', False, False)] + ([('resident + compile', True, True)] if with_compile else [])
    for name, resident, comp in configs:
        with tempfile.TemporaryDirectory() as d:
            t0 = time.perf_counter()
            res = train(model, ds, get_recipe('cifar', epochs=epochs, batch_size=batch_size), d, device=device,
                        progress=False, resident=resident, compile=comp)
            rows.append(dict(path=name, model=model, images=len(ds), epochs=epochs, batch_size=batch_size,
                             images_per_s=round(res['images_per_s'], 1), wall_s=round(time.perf_counter() - t0, 1)))
        print(f"trainer {model} {name:<20} {rows[-1]['images_per_s']:>9.1f} img/s (last of {epochs} epochs of {len(ds)} images)", flush=True)
    return rows

if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--device', default=None); ap.add_argument('--n', type=int, default=20000)
    ap.add_argument('--epochs', type=int, default=2); ap.add_argument('--batch-size', type=int, default=128)
    ap.add_argument('--compile', action='store_true'); ap.add_argument('--json', default=None)
    a = ap.parse_args()
    dev = str(get_device(a.device))
    rows = run(dev, a.n, a.epochs, a.batch_size, a.compile)
    if a.json: Path(a.json).write_text(json.dumps(dict(env=env_info(dev), rows=rows), indent=1))
