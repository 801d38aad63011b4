"""How far the cpu preset's CIFAR-10 model gets with more data or epochs, and what it costs: one training run per call.

    python benchmarks/train_throughput/cpu_recipe.py --model convnet_small --per-class 5000 --epochs 4 [--aug augmix]
        [--threads 1] [--bf16 auto|true|false] [--out cpu_recipe.jsonl]

Trains with augflat's trainer and the cifar recipe (SGD + Nesterov, cosine, flip/crop) on a class-balanced subset
of real CIFAR-10, evaluates the whole 10,000-image test set once at the end, and appends one JSON line (the final
metrics, wall time, training images/s, CPU model and whether it has bf16 instructions) to `--out`. Run two at once
on 2 cores to compare recipes under the same load.
"""
import argparse, json, os, time
from pathlib import Path
import torch
from augflat.core import env_info
from augflat.data import load_dataset, subset_per_class
from augflat.train import train, get_recipe, build_augmentation, native_cpu_bf16


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--model', default='convnet_small'); ap.add_argument('--per-class', type=int, default=500)
    ap.add_argument('--epochs', type=int, default=6); ap.add_argument('--aug', default='none')
    ap.add_argument('--lr', type=float, default=0.1); ap.add_argument('--threads', type=int, default=1)
    ap.add_argument('--bf16', default='false', choices=['auto', 'true', 'false'])
    ap.add_argument('--out', default=str(Path(__file__).with_name('cpu_recipe.jsonl')))
    ap.add_argument('--work', default='/tmp/augflat-cpu-recipe')
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    tr, te = load_dataset('cifar10', 'train'), load_dataset('cifar10', 'test')
    if a.per_class < 5000: tr = subset_per_class(tr, a.per_class, seed=0)
    aug, hook = build_augmentation(None if a.aug == 'none' else a.aug, {}, False)
    bf16 = {'true': True, 'false': False}.get(a.bf16, 'auto')
    out_dir = Path(a.work)/f"{a.model}-{a.aug}-k{a.per_class}-e{a.epochs}-{time.time():.0f}"
    load = os.getloadavg(); t0 = time.perf_counter()
    final = train(a.model, tr, get_recipe('cifar', epochs=a.epochs, lr=a.lr, cpu_bf16=bf16), out_dir, aug=aug, loss_hook=hook,
                  test_set=subset_per_class(te, 50, seed=0), final_test_set=te, progress=False)
    rec = dict(model=a.model, aug=a.aug, n_train=len(tr), epochs=a.epochs, image_passes=len(tr) * a.epochs, lr=a.lr,
               threads=a.threads, bf16=a.bf16, wall_s=time.perf_counter() - t0, load_before=load, load_after=os.getloadavg(),
               final_test_acc=final['final_test_acc'], final_train_acc=final['train_acc'], last_epoch_img_per_s=final['images_per_s'],
               cpu=next((l.split(':', 1)[1].strip() for l in open('/proc/cpuinfo') if l.startswith('model name')), '?'),
               native_bf16=native_cpu_bf16(), env=env_info('cpu'))
    with open(a.out, 'a') as f: f.write(json.dumps(rec) + '\n')
    print(json.dumps({k: rec[k] for k in ('model', 'aug', 'n_train', 'epochs', 'wall_s', 'final_test_acc', 'last_epoch_img_per_s', 'native_bf16')}))


if __name__ == '__main__':
    main()
