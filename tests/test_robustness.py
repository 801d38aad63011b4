"""Robustness metrics end to end: known-answer -C/-P/-C-bar dirs, our PGD against torchattacks on a small model
trained on real CIFAR-10, and clear errors for bad inputs."""
import time
from pathlib import Path
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from augflat.core import AugflatError, cache_dir, seed_everything
from augflat.robustness import (C_CORRUPTIONS, CBAR_CORRUPTIONS, accuracy, corruption_errors, mce, cbar_error,
                                perturbation_flip_probs, mfp, robust_accuracy, pgd_attack, evaluate, read_c_set,
                                read_p_set, PGD_PRESETS, format_table)

DATA = Path(__file__).resolve().parents[1].parent/'shared'/'data'


def _have_cifar():
    try:
        from augflat.data import locate
        locate('cifar10')
        return True
    except Exception:
        return False


from conftest import PixelOracle as Oracle, oracle_frames as _frames


def test_c_known_answer(tmp_path):
    rng = np.random.default_rng(0)
    n, y = 40, rng.integers(0, 10, 40)
    want = {}
    for i, c in enumerate(C_CORRUPTIONS):
        frames, errs = [], []
        for s in range(5):
            wrong = rng.random(n) < (i + s) / 25       # a known fraction wrong per corruption and severity
            pred = np.where(wrong, (y + 1) % 10, y)
            frames.append(_frames(pred)); errs.append(100 * wrong.mean())
        np.save(tmp_path/f"{c}.npy", np.concatenate(frames)); want[c] = errs
    np.save(tmp_path/"labels.npy", np.tile(y, 5))
    got = corruption_errors(Oracle(), tmp_path)
    for c in C_CORRUPTIONS: np.testing.assert_allclose(got[c], want[c])
    assert mce(got) == pytest.approx(np.mean([np.mean(v) for v in want.values()]))
    # n limits images per severity, keeping the severity-major layout
    got5 = corruption_errors(Oracle(), tmp_path, ['gaussian_noise'], n=5)
    assert len(got5['gaussian_noise']) == 5


def test_p_known_answer(tmp_path):
    # two sequences of 5 frames; predictions chosen by hand
    seqs = {'gaussian_noise': [[1, 2, 1, 1, 3], [4, 4, 4, 4, 4]],   # vs frame 0: 2/4 and 0/4
            'translate': [[1, 2, 1, 1, 3], [4, 4, 5, 5, 4]]}          # consecutive: 3/4 and 2/4
    for t, s in seqs.items():
        np.save(tmp_path/f"{t}.npy", np.stack([_frames(q) for q in s]))
    fp = perturbation_flip_probs(Oracle(), tmp_path)
    assert fp['gaussian_noise'] == pytest.approx((2 / 4 + 0) / 2)
    assert fp['translate'] == pytest.approx((3 / 4 + 2 / 4) / 2)
    assert mfp(fp) == pytest.approx(100 * (0.25 + 0.625) / 2)
    fp2 = perturbation_flip_probs(Oracle(), tmp_path, ['translate'], difficulty=2)
    # chains (0,2,4),(1,3): seq1 1,1,3 | 2,1 -> 1+1 of 3 ; seq2 4,5,4 | 4,5 -> 2+1 of 3
    assert fp2['translate'] == pytest.approx((2 / 3 + 3 / 3) / 2)


def test_bad_inputs(tmp_path):
    with pytest.raises(AugflatError, match="not found"): corruption_errors(Oracle(), tmp_path/'missing')
    with pytest.raises(AugflatError, match="not found"): perturbation_flip_probs(Oracle(), tmp_path/'missing')
    with pytest.raises(AugflatError, match="missing labels.npy"):
        np.save(tmp_path/'fog.npy', _frames([1] * 10)); read_c_set(tmp_path, 'fog')
    np.save(tmp_path/'labels.npy', np.zeros(9, np.int64))
    with pytest.raises(AugflatError, match="multiple of"): read_c_set(tmp_path, 'fog')
    np.save(tmp_path/'snow.npy', np.zeros((10, 3, 8, 8), np.uint8))
    with pytest.raises(AugflatError, match="expected uint8"): read_c_set(tmp_path, 'snow')
    np.save(tmp_path/'rotate.npy', np.zeros((10, 8, 8, 3), np.uint8))
    with pytest.raises(AugflatError, match="expected uint8 \\(N, T>=2"): read_p_set(tmp_path, 'rotate')
    with pytest.raises(AugflatError, match="missing"): mce({'fog': [1] * 5})
    with pytest.raises(AugflatError, match="unknown norm"):
        pgd_attack(Oracle(), torch.zeros(1, 3, 8, 8), torch.zeros(1, dtype=torch.long), 'l7')
    with pytest.raises(AugflatError, match="unknown suite"): evaluate(Oracle(), 'cifar10', suite='clean,x')


def _minimal_train(model, x, y, epochs, seed):
    "A plain SGD loop (fallback while augflat.train is unavailable)."
    seed_everything(seed)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4)
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(len(y))
        for i in range(0, len(y), 128):
            idx = perm[i:i + 128]
            xb = x[idx].float() / 255
            flip = torch.rand(len(idx)) < 0.5
            xb[flip] = xb[flip].flip(-1)
            loss = F.cross_entropy(model(xb), y[idx])
            opt.zero_grad(); loss.backward(); opt.step()
    return model.eval()


@pytest.fixture(scope='module')
def small_cifar_model():
    "convnet_small (width 16) trained on 5,000 real CIFAR-10 training images, 4 epochs (cached)."
    if not _have_cifar(): pytest.skip("CIFAR-10 not found in any data root (../shared/data/cifar10.zip)")
    from augflat.data import load_dataset, subset_per_class
    from augflat.models import get_model
    out = cache_dir('tests', 'robustness', 'convnet_small16_cifar10_5k_e4')
    try:
        from augflat.train import train, Recipe, load_checkpoint
    except ImportError:
        train = None
    if train is not None:
        if not (out/'checkpoint.pt').exists():
            train('convnet_small', subset_per_class(load_dataset('cifar10', 'train'), 500, seed=0),
                  Recipe(epochs=4, batch_size=128, lr=0.05), out, seed=0, device='cpu', progress=False,
                  model_kwargs=dict(width=16))
        model, _ = load_checkpoint(out/'checkpoint.pt')
        return model.eval()
    model = get_model('convnet_small', 10, width=16)
    f = out/'fallback_state.pt'
    if f.exists(): model.load_state_dict(torch.load(f, weights_only=True))
    else:
        tr = subset_per_class(load_dataset('cifar10', 'train'), 500, seed=0)
        _minimal_train(model, tr.x, tr.y, epochs=4, seed=0)
        torch.save(model.state_dict(), f)
    return model.eval()


@pytest.fixture(scope='module')
def cifar_test_500():
    from augflat.data import load_dataset
    te = load_dataset('cifar10', 'test')
    idx = torch.randperm(len(te), generator=torch.Generator().manual_seed(0))[:500]
    return te.x[idx], te.y[idx]


@pytest.mark.parametrize('norm,eps,step,steps,random_start', [
    ('linf', 1 / 255, 0.25 / 255, 20, False),
    ('l2', 0.25, 0.05, 7, False),
])
def test_pgd_matches_torchattacks(small_cifar_model, cifar_test_500, norm, eps, step, steps, random_start):
    torchattacks = pytest.importorskip('torchattacks')
    model, (x, y) = small_cifar_model, cifar_test_500
    ours = robust_accuracy(model, x, y, norm, eps, step, steps, random_start, seed=0, batch_size=250)
    cls = torchattacks.PGD if norm == 'linf' else torchattacks.PGDL2
    atk = cls(model, eps=eps, alpha=step, steps=steps, random_start=random_start)
    torch.manual_seed(0)
    xf = x.float() / 255
    correct = 0
    for i in range(0, len(y), 250):
        xa = atk(xf[i:i + 250], y[i:i + 250])
        with torch.no_grad(): correct += int((model.eval()(xa).argmax(1) == y[i:i + 250]).sum())
    theirs = 100 * correct / len(y)
    clean = accuracy(model, x, y)
    print(f"{norm} eps={eps:.4f} clean={clean:.1f} ours={ours:.1f} torchattacks={theirs:.1f}")
    assert clean > 30, "the small model should have learned something"
    assert abs(ours - theirs) <= 1.0


def test_evaluate_real_cifar(small_cifar_model, tmp_path):
    "clean + pgd through `evaluate` on real images, plus -C from a user dir (synthetic layout, real model)."
    from augflat.data import load_dataset
    te = load_dataset('cifar10', 'test')
    x = te.x[:20].permute(0, 2, 3, 1).numpy()
    for c in C_CORRUPTIONS: np.save(tmp_path/f"{c}.npy", np.concatenate([x] * 5))
    np.save(tmp_path/'labels.npy', np.tile(te.y[:20].numpy(), 5))
    res = evaluate(small_cifar_model, 'cifar10', suite='clean,c,pgd', n=20, c_dir=tmp_path, pgd_n=20, device='cpu')
    m = res['metrics']
    # every -C set here is the clean image: mCE equals the clean error on those 20 images
    assert m['mce'] == pytest.approx(100 - accuracy(small_cifar_model, te.x[:20], te.y[:20]))
    assert res['pgd']['linf']['eps'] == PGD_PRESETS['cifar']['linf']['eps'] and res['pgd']['l2']['steps'] == 7
    assert m['pgd_linf_err'] >= m['clean_err'] - 20   # attack on a different random subset, same size
    print(format_table(res))


def test_clean_n_scores_its_own_images(small_cifar_model):
    "`clean_n`: the clean accuracy on its own class-balanced images (None: the whole test set), the other sets keep `n`."
    from augflat.data import load_dataset
    from augflat.robustness import eval_indices
    te = load_dataset('cifar10', 'test')
    same = evaluate(small_cifar_model, te, suite='clean', n=20, device='cpu')
    own = evaluate(small_cifar_model, te, suite='clean', n=20, clean_n=200, device='cpu')
    assert same['metrics']['clean_n'] == 20 and own['metrics']['clean_n'] == 200
    idx = eval_indices(te.y, 200)
    assert np.array_equal(own['per_image']['clean/index'], idx)
    assert own['metrics']['clean_acc'] == pytest.approx(accuracy(small_cifar_model, te.x[idx], te.y[idx]))
    every = evaluate(small_cifar_model, te, suite='clean', n=20, clean_n=None, device='cpu')
    assert every['metrics']['clean_n'] == len(te)
