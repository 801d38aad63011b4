"""Trainer throughput: augflat.train.train against a plain hand-written PyTorch loop, same model, data, batch, run.

    python benchmarks/train_throughput/run.py [--model wrn16_2] [--n 2048] [--batch-size 128] [--repeats 2] [--device cpu]

Prints images/s for both and the ratio ours/plain (target >= 0.95 on CPU). Each side is timed over whole epochs
(data order, flip/crop, forward, backward, step; our side also writes its checkpoint and metrics every epoch).
"""
import argparse, tempfile, time, math
from pathlib import Path
import torch, torch.nn.functional as F
from augflat.core import get_device, env_info
from augflat.data import load_dataset, subset_per_class
from augflat.models import get_model
from augflat.train import train, get_recipe, flip_crop


def plain_loop(model_name, ds, recipe, device, seed=0):
    """What one writes by hand: shuffle, pad-crop + flip, forward, CE, backward, SGD step, cosine lr.
    It uses our batched `flip_crop`, so the ratio measures the trainer's own overhead (bookkeeping, seeding,
    checkpoints, hooks), not a difference in augmentation code."""
    torch.manual_seed(seed)
    net = get_model(model_name, ds.num_classes).to(device).train()
    opt = torch.optim.SGD(net.parameters(), lr=recipe.lr, momentum=0.9, nesterov=True, weight_decay=5e-4)
    n, bs = len(ds), recipe.batch_size
    total, step = recipe.epochs * math.ceil(n / bs), 0
    x_all, y_all = ds.x.to(device), ds.y.to(device)
    for _ in range(recipe.epochs):
        perm = torch.randperm(n)
        for i in range(0, n, bs):
            idx = perm[i:i + bs].to(device)
            yb = y_all[idx]
            xb = flip_crop(x_all[idx], 4, True).float() / 255       # same batched per-sample crop/flip as ours
            for g in opt.param_groups: g['lr'] = 1e-6 + (recipe.lr - 1e-6) * 0.5 * (1 + math.cos(math.pi * step / total))
            loss = F.cross_entropy(net(xb), yb)
            opt.zero_grad(set_to_none=True); loss.backward(); opt.step(); step += 1
    return net


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--model', default='wrn16_2'); ap.add_argument('--n', type=int, default=2048)
    ap.add_argument('--batch-size', type=int, default=128); ap.add_argument('--epochs', type=int, default=1)
    ap.add_argument('--repeats', type=int, default=2); ap.add_argument('--device', default='cpu')
    a = ap.parse_args()
    dev = get_device(a.device)
    ds = subset_per_class(load_dataset('cifar10', 'train'), a.n // 10, seed=0)
    recipe = get_recipe('cifar', epochs=a.epochs, batch_size=a.batch_size)
    ours, plain = [], []
    for r in range(a.repeats + 1):                           # round 0 warms up both
        with tempfile.TemporaryDirectory() as d:
            t0 = time.perf_counter(); train(a.model, ds, recipe, Path(d)/'run', device=dev, progress=False); t_ours = time.perf_counter() - t0
        t0 = time.perf_counter(); plain_loop(a.model, ds, recipe, dev); t_plain = time.perf_counter() - t0
        if r: ours.append(len(ds) * a.epochs / t_ours); plain.append(len(ds) * a.epochs / t_plain)
    o, p = max(ours), max(plain)
    info = env_info(dev)
    print(f"model={a.model} n={len(ds)} batch={a.batch_size} device={info['device']} {info.get('gpu', '')} threads={info['torch_threads']}")
    print(f"augflat trainer: {o:8.1f} img/s   plain loop: {p:8.1f} img/s   ratio ours/plain = {o / p:.3f}")


if __name__ == '__main__':
    main()
