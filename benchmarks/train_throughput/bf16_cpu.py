"""bf16 autocast + channels_last against fp32 on CPU, for training and evaluation, in one run.

    python benchmarks/train_throughput/bf16_cpu.py [--models convnet_small,wrn10_1] [--threads 1] [--repeats 3]
        [--accuracy-model convnet_small --accuracy-n 5000 --accuracy-epochs 3]

Throughput: the same model, initialization, real CIFAR-10 batches and SGD step, timed over `--steps` training steps
(flip/crop, forward, backward, step) and over `--eval-images` evaluation images (inference_mode forward), after a
warm-up, interleaving the two precisions and keeping the best of `--repeats` (the machine is shared). Accuracy: a
short training of one model from the same seed and batches in each precision, then clean accuracy on test images.
Writes bf16_cpu.json beside this file and prints the ratios bf16/fp32.
"""
import argparse, json, math, os, time
from contextlib import nullcontext
from pathlib import Path
import torch, torch.nn.functional as F
from augflat.core import env_info, write_json
from augflat.data import load_dataset, subset_per_class
from augflat.models import get_model
from augflat.train import flip_crop, cosine_lr, native_cpu_bf16


def _cpu_model():
    try: return next(l.split(':', 1)[1].strip() for l in open('/proc/cpuinfo') if l.startswith('model name'))
    except (OSError, StopIteration): return 'unknown'


def make(model_name, bf16, seed=0):
    torch.manual_seed(seed)
    net = get_model(model_name, 10)
    if bf16: net = net.to(memory_format=torch.channels_last)
    return net


def prep(xb, bf16):
    x = xb.float().div_(255)
    return x.contiguous(memory_format=torch.channels_last) if bf16 else x


def amp(bf16): return torch.autocast('cpu', dtype=torch.bfloat16) if bf16 else nullcontext()


def train_steps(net, opt, x, y, bf16, steps, bs, g, lr_at=None):
    "`steps` SGD steps on random batches of (x, y); returns the mean training loss."
    net.train(); tot = 0.
    for s in range(steps):
        idx = torch.randint(0, len(y), (bs,), generator=g)
        xb = prep(flip_crop(x[idx], 4, True, g), bf16)
        if lr_at is not None:
            for grp in opt.param_groups: grp['lr'] = lr_at(s)
        with amp(bf16): out = net(xb)
        loss = F.cross_entropy(out.float(), y[idx])
        opt.zero_grad(set_to_none=True); loss.backward(); opt.step(); tot += loss.item()
    return tot / steps


@torch.inference_mode()
def evaluate(net, x, y, bf16, bs=500):
    net.eval(); correct = 0
    for i in range(0, len(y), bs):
        with amp(bf16): out = net(prep(x[i:i + bs], bf16))
        correct += (out.float().argmax(1) == y[i:i + bs]).sum().item()
    return 100. * correct / len(y)


def throughput(model_name, x, y, xt, yt, a):
    res = {}
    for bf16 in (False, True):
        res[bf16] = dict(train=[], eval=[])
    nets = {bf16: make(model_name, bf16) for bf16 in (False, True)}
    opts = {b: torch.optim.SGD(n.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4) for b, n in nets.items()}
    for r in range(a.repeats + 1):                           # round 0 warms both up (oneDNN kernels, allocator)
        for bf16 in (False, True):
            g = torch.Generator().manual_seed(r)
            t = time.perf_counter(); train_steps(nets[bf16], opts[bf16], x, y, bf16, a.steps if r else 2, a.batch_size, g)
            dt_train = time.perf_counter() - t
            t = time.perf_counter(); evaluate(nets[bf16], xt[:a.eval_images if r else 500], yt[:a.eval_images if r else 500], bf16)
            dt_eval = time.perf_counter() - t
            if r:
                res[bf16]['train'].append(a.steps * a.batch_size / dt_train); res[bf16]['eval'].append(a.eval_images / dt_eval)
    best = {('bf16' if b else 'fp32'): {k: max(v) for k, v in d.items()} for b, d in res.items()}
    return dict(img_per_s=best, all=dict(fp32=res[False], bf16=res[True]),
                ratio=dict(train=best['bf16']['train'] / best['fp32']['train'], eval=best['bf16']['eval'] / best['fp32']['eval']))


def accuracy(model_name, x, y, xt, yt, a):
    "Same seed, same batches, same schedule: fp32 vs bf16 autocast + channels_last."
    out = {}
    steps = a.accuracy_epochs * math.ceil(len(y) / a.batch_size)
    for bf16 in (False, True):
        net = make(model_name, bf16)
        opt = torch.optim.SGD(net.parameters(), lr=a.lr, momentum=0.9, nesterov=True, weight_decay=5e-4)
        g = torch.Generator().manual_seed(0)
        t = time.perf_counter()
        loss = train_steps(net, opt, x, y, bf16, steps, a.batch_size, g, lambda s: cosine_lr(s, steps, a.lr, 1e-6))
        dt = time.perf_counter() - t
        out['bf16' if bf16 else 'fp32'] = dict(train_loss_mean=loss, test_acc_fp32_eval=evaluate(net, xt, yt, False),
                                               test_acc_same_precision=evaluate(net, xt, yt, bf16), train_s=dt)
    return dict(model=model_name, n_train=len(y), steps=steps, n_test=len(yt), **out,
                acc_diff_pp=out['bf16']['test_acc_same_precision'] - out['fp32']['test_acc_same_precision'])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--models', default='convnet_small,wrn10_1'); ap.add_argument('--threads', type=int, default=1)
    ap.add_argument('--batch-size', type=int, default=128); ap.add_argument('--steps', type=int, default=12)
    ap.add_argument('--eval-images', type=int, default=2000); ap.add_argument('--repeats', type=int, default=3)
    ap.add_argument('--accuracy-model', default='convnet_small'); ap.add_argument('--accuracy-n', type=int, default=5000)
    ap.add_argument('--accuracy-epochs', type=int, default=3); ap.add_argument('--accuracy-test', type=int, default=2000)
    ap.add_argument('--lr', type=float, default=0.1)
    ap.add_argument('--out', default=str(Path(__file__).with_name('bf16_cpu.json')))
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    tr = subset_per_class(load_dataset('cifar10', 'train'), 500, seed=0)
    te = subset_per_class(load_dataset('cifar10', 'test'), -(-max(a.eval_images, a.accuracy_test) // 10), seed=0)  # the file is sorted by class
    x, y, xt, yt = tr.x, tr.y, te.x, te.y
    cpu = dict(model=_cpu_model(), native_bf16=native_cpu_bf16())   # without bf16 instructions PyTorch emulates bf16
    print(f"torch {torch.__version__}, {a.threads} thread(s), CPU {cpu['model']}, bf16 instructions (AVX512-BF16/AMX): "
          f"{cpu['native_bf16']} / load average {os.getloadavg()}", flush=True)
    result = dict(config=vars(a), env=env_info('cpu'), cpu=cpu, load_before=os.getloadavg(), throughput={})
    for m in [s for s in a.models.split(',') if s]:
        r = throughput(m, x, y, xt, yt, a); result['throughput'][m] = r
        print(f"{m:>14}: train fp32 {r['img_per_s']['fp32']['train']:7.1f} img/s, bf16 {r['img_per_s']['bf16']['train']:7.1f} "
              f"(x{r['ratio']['train']:.2f}); eval fp32 {r['img_per_s']['fp32']['eval']:7.1f}, bf16 {r['img_per_s']['bf16']['eval']:7.1f} "
              f"(x{r['ratio']['eval']:.2f})", flush=True)
    if a.accuracy_model:
        acc_set = subset_per_class(tr, a.accuracy_n // 10, seed=0) if a.accuracy_n < len(tr) else tr
        acc_te = subset_per_class(te, a.accuracy_test // 10, seed=0)
        r = accuracy(a.accuracy_model, acc_set.x, acc_set.y, acc_te.x, acc_te.y, a)
        result['accuracy'] = r
        print(f"accuracy ({r['model']}, {r['n_train']} images, {r['steps']} steps, {r['n_test']} test images): "
              f"fp32 {r['fp32']['test_acc_same_precision']:.2f}%, bf16 {r['bf16']['test_acc_same_precision']:.2f}% "
              f"(bf16-trained, fp32 eval {r['bf16']['test_acc_fp32_eval']:.2f}%); difference {r['acc_diff_pp']:+.2f} pp; "
              f"train time fp32 {r['fp32']['train_s']:.1f} s, bf16 {r['bf16']['train_s']:.1f} s", flush=True)
    result['load_after'] = os.getloadavg()
    write_json(a.out, result); print(f"wrote {a.out}")


if __name__ == '__main__':
    main()
