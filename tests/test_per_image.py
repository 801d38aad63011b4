"""Per-image results of `evaluate`: they reproduce every headline metric, survive the .npz round trip, and two models
of a run are scored on the same images. A few seconds (the real-CIFAR test: ~10 s)."""
import json
from types import SimpleNamespace
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import require_dataset
from augflat.core import AugflatError
from augflat.robustness import (C_CORRUPTIONS, CBAR_CORRUPTIONS, evaluate, save_evaluation, save_per_image,
                                load_per_image, per_image_path, eval_indices)
from augflat.evidence import image_scores, paired_decision


from conftest import PixelOracle, oracle_frames as frames


@pytest.fixture
def synthetic_sets(tmp_path):
    "-C, -C-bar and -P dirs over 12 images with random (seeded) per-image outcomes, and a matching clean test set."
    rng, n = np.random.default_rng(0), 12
    y = rng.integers(0, 10, n)
    for kind, names in (('c', C_CORRUPTIONS), ('cbar', CBAR_CORRUPTIONS)):
        d = tmp_path/kind; d.mkdir()
        for name in names:
            pred = np.where(rng.random((5, n)) < 0.3, (y + 1) % 10, y)
            np.save(d/f"{name}.npy", np.concatenate([frames(p) for p in pred]))
        np.save(d/'labels.npy', np.tile(y, 5))
    p = tmp_path/'p'; p.mkdir()
    for t in ('gaussian_noise', 'rotate'):
        seq = rng.integers(0, 3, (n, 6))
        np.save(p/f"{t}.npy", np.stack([frames(s) for s in seq]))
    test = SimpleNamespace(x=torch.from_numpy(frames(np.where(rng.random(n) < 0.2, (y + 1) % 10, y))).permute(0, 3, 1, 2),
                           y=torch.from_numpy(y), name='cifar10')
    return tmp_path, test


def test_per_image_reproduces_every_metric(synthetic_sets, tmp_path):
    d, test = synthetic_sets
    res = evaluate(PixelOracle(), test, suite='clean,c,p,cbar', c_dir=d/'c', p_dir=d/'p', cbar_dir=d/'cbar', device='cpu')
    m, pi = res['metrics'], res['per_image']
    for metric in ('clean_err', 'clean_acc', 'mce', 'cbar_err', 'mfp'):
        idx, scores, binary = image_scores(pi, metric)
        assert len(idx) == 12
        assert np.mean(scores) * (100 if binary else 1) == pytest.approx(m[metric]), metric
    assert {k: v['n'] for k, v in res['images'].items()} == dict(clean=12, c=12, cbar=12, p=12)
    # the file beside the JSON holds the same arrays (bit-packed booleans of odd length included)
    out = save_evaluation(tmp_path/'robustness.json', res)
    assert json.loads(out.read_text())['per_image'] == 'robustness.npz' and 'per_image' in json.loads(out.read_text())
    back = load_per_image(per_image_path(out))
    assert set(back) == set(pi)
    for k in pi: np.testing.assert_array_equal(back[k], pi[k])
    assert back['c/fog'].dtype == bool and back['c/fog'].shape == (5, 12)


def test_bit_packing_round_trip(tmp_path):
    rng = np.random.default_rng(1)
    arrays = {'a': rng.random(13) < 0.5, 'b': rng.random((5, 7)) < 0.5, 'c': np.arange(9, dtype=np.uint8),
              'd': np.array(31)}
    back = load_per_image(save_per_image(tmp_path/'x.npz', arrays))
    for k, v in arrays.items(): np.testing.assert_array_equal(back[k], v); assert back[k].shape == v.shape
    with pytest.raises(AugflatError, match="no per-image results"): load_per_image(tmp_path/'missing.npz')


def test_image_choice_depends_on_labels_and_n_only():
    y = np.repeat(np.arange(10), 50)[np.random.default_rng(2).permutation(500)]   # a shuffled test set
    a = eval_indices(y, 100)
    assert np.array_equal(a, eval_indices(torch.from_numpy(y), 100))             # tensor or array, same choice
    assert np.bincount(y[a]).tolist() == [10] * 10 and np.all(np.diff(a) > 0)
    assert set(eval_indices(y, 30)) <= set(a)                                      # PGD's smaller n: a subset


def test_two_models_are_scored_on_the_same_images():
    "Two different models on the real CIFAR-10 test set: identical image indices for clean and PGD, so they pair."
    require_dataset('cifar10')
    torch.manual_seed(0)
    models = [torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 32 * 32, 10)) for _ in range(2)]
    res = [evaluate(m, 'cifar10', suite='clean,pgd', n=60, pgd_n=20, seed=s, device='cpu') for m, s in zip(models, (0, 1))]
    for kind, n in (('clean', 60), ('pgd', 20)):
        i0, i1 = res[0]['per_image'][f'{kind}/index'], res[1]['per_image'][f'{kind}/index']
        assert len(i0) == n and np.array_equal(i0, i1)
        assert res[0]['images'][kind]['sha1'] == res[1]['images'][kind]['sha1']
    assert set(res[0]['per_image']['pgd/index']) <= set(res[0]['per_image']['clean/index'])
    d = paired_decision([res[0]['per_image']], [res[1]['per_image']], 'clean_err')
    assert d['method'] == 'exact McNemar' and d['n'] == 60
    assert d['diff'] == pytest.approx(res[0]['metrics']['clean_err'] - res[1]['metrics']['clean_err'])
