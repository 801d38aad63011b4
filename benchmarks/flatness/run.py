"""Speed of the batched Monte-Carlo loss evaluation against a straightforward loop, in the same run.

Straightforward loop (what one writes first): for each noise draw, deep-copy the model, add the noise to its
parameters, and iterate a DataLoader over the data subset (a TensorDataset of uint8 tensors: the cheapest loader;
a second variant decodes per sample like torchvision's CIFAR10 + ToTensor, as LPF-SGD's code does). Ours (augflat.flatness.mc_losses on a NetworkProblem):
one flat parameter buffer written in place per draw, every data batch converted once and reused by all draws,
channels-last input. Both use the same noise draws; the script checks that the losses agree.

    python benchmarks/flatness/run.py [--model convnet_small] [--n-train 512] [--draws 8] [--repeats 2]
"""
import argparse, copy, sys, time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))   # run from a checkout without installing
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset
from augflat.core import write_json, env_info, get_device
from augflat.models import get_model
from augflat import flatness as fl

class TorchvisionStyle(torch.utils.data.Dataset):
    "What torchvision's CIFAR10 + ToTensor does per sample: uint8 HWC array -> PIL image -> float CHW tensor."
    def __init__(self, x, y): self.x, self.y = x.permute(0, 2, 3, 1).numpy(), y
    def __len__(self): return len(self.y)
    def __getitem__(self, i):
        from PIL import Image
        from torchvision.transforms.functional import to_tensor
        return to_tensor(Image.fromarray(self.x[i])), self.y[i]

def loop_mc_losses(model, x, y, sigma, n_draws, seed, batch_size, device, torchvision_style=False):
    "The straightforward implementation: deep copy per draw, data loader re-iterated per draw."
    params = [p for p in model.parameters() if p.requires_grad]
    scale = fl.filter_norm_scale(model, params)
    out = []
    for k in range(n_draws):
        noisy = copy.deepcopy(model)
        z = fl.standard_normal_draws(len(scale), k, k + 1, seed)[0].to(device)   # the same draws as mc_losses
        with torch.no_grad():
            off = 0
            for p in (q for q in noisy.parameters() if q.requires_grad):
                p.add_((sigma * scale[off:off + p.numel()] * z[off:off + p.numel()]).view_as(p)); off += p.numel()
        noisy.eval(); total = 0.
        with torch.no_grad():
            ds = TorchvisionStyle(x, y) if torchvision_style else TensorDataset(x, y)
            for xb, yb in DataLoader(ds, batch_size=batch_size, shuffle=False):
                xb, yb = xb.to(device), yb.to(device)
                xb = xb.float() / 255 if xb.dtype == torch.uint8 else xb
                total += F.cross_entropy(noisy(xb), yb, reduction='sum').item()
        out.append(total / len(y))
    return torch.tensor(out, dtype=torch.float64)

def load_x_y(n):
    try:
        from augflat.data import load_dataset
        ds = load_dataset('cifar10', 'train'); x, y = fl.train_subset(ds, n, seed=0); return x, y, 'cifar10'
    except Exception as e:
        g = torch.Generator().manual_seed(0)
        return torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g), torch.randint(0, 10, (n,), generator=g), f'random ({e})'

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--model', default='convnet_small'); ap.add_argument('--n-train', type=int, default=512)
    ap.add_argument('--draws', type=int, default=8); ap.add_argument('--batch-size', type=int, default=256)
    ap.add_argument('--repeats', type=int, default=2); ap.add_argument('--sigma', type=float, default=0.01)
    ap.add_argument('--threads', type=int, default=2); ap.add_argument('--device', default='cpu')
    ap.add_argument('--out', default=str(Path(__file__).with_name('results.json')))
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads); dev = get_device(a.device)
    x, y, source = load_x_y(a.n_train)
    model = get_model(a.model, 10).to(dev).eval()
    impls = {
        'loop (deepcopy + DataLoader per draw)': lambda: loop_mc_losses(model, x, y, a.sigma, a.draws, 0, a.batch_size, dev),
        'loop, torchvision-style dataset': lambda: loop_mc_losses(model, x, y, a.sigma, a.draws, 0, a.batch_size, dev, True),
        'ours, channels_last=False': lambda: fl.mc_losses(fl.NetworkProblem(model, x, y, a.batch_size, dev, channels_last=False), a.sigma, a.draws)['ce'],
        'ours (default)': lambda: fl.mc_losses(fl.NetworkProblem(model, x, y, a.batch_size, dev), a.sigma, a.draws)['ce'],
    }
    times = {k: [] for k in impls}; vals = {}
    for _ in range(a.repeats):                       # interleaved, best of repeats: the machine is shared
        for k, f in impls.items():
            t = time.perf_counter(); vals[k] = f()
            if dev.type == 'cuda': torch.cuda.synchronize()
            times[k].append(time.perf_counter() - t)
    ref = vals['loop (deepcopy + DataLoader per draw)']
    max_diff = max(float((v - ref).abs().max()) for v in vals.values())
    best = {k: min(v) for k, v in times.items()}
    loop_s = best['loop (deepcopy + DataLoader per draw)']
    print(f"{a.model}, {len(y)} images ({source}), {a.draws} draws, batch {a.batch_size}, {a.threads} threads, {dev}")
    for k, s in best.items():
        print(f"  {k:<40} {s:8.2f} s   {a.draws * len(y) / s:8.0f} image-forwards/s   speed-up x{loop_s / s:.2f}")
    print(f"  max |loss difference| between implementations: {max_diff:.2e}")
    write_json(a.out, dict(config=vars(a) | dict(data=source), env=env_info(dev), seconds_best=best, seconds_all=times,
                           speedup={k: loop_s / s for k, s in best.items()}, max_loss_diff=max_diff))

if __name__ == '__main__': main()
