"Proximal density: eCDF sanity checks, user augmentations by 'module:callable', clear errors, the CLI."
import argparse, json, sys, textwrap
from pathlib import Path
import numpy as np
import pytest
import torch

from augflat.core import AugflatError, data_roots
from augflat.density import (ECDF, ConstantShift, GaussianNoise, identity, augmented_distances, proximal_density,
                             apply_augmentation, combination_report, load_callable, register_cli, get_distance,
                             resolve_augmentation, density_report, rank_among, check_ordering, paper_table1)


def _cifar_available():
    return any((r / 'cifar10.zip').exists() or (r / 'cifar10').exists() or (r / 'cifar-10-batches-py').exists()
               for r in data_roots())


@pytest.fixture(scope='module')
def images():
    "A few real CIFAR-10 test images when the data is present, else random uint8 images."
    if _cifar_available():
        from augflat.density import load_images
        return load_images('cifar10', 24, seed=0).x
    return torch.randint(0, 256, (24, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))


def test_identity_gives_F0_equal_1(images):
    e = ECDF.from_distances(augmented_distances(identity, images, 5, progress=False))
    assert e.F(0.0) == 1.0 and e.coverage(0.0) == 1.0


def test_constant_shift_gives_F0_below_the_shift():
    flat = torch.full((8, 3, 16, 16), 90, dtype=torch.uint8)          # no clamping: every distance is exactly 40/255
    e = ECDF.from_distances(augmented_distances(ConstantShift(40), flat, 4, progress=False))
    assert e.F(0.0) == 0.0 and e.F(40 / 255 - 1e-6) == 0.0 and e.F(40 / 255 + 1e-6) == 1.0
    e_inf = ECDF.from_distances(augmented_distances(ConstantShift(40), flat, 4, distance='linf', progress=False))
    assert e_inf.F(40 / 255 - 1e-6) == 0.0 and e_inf.F(40 / 255 + 1e-6) == 1.0


def test_seeded_and_independent_samples(images):
    a = augmented_distances(GaussianNoise(0.03), images, 6, seed=5, progress=False)
    b = augmented_distances(GaussianNoise(0.03), images, 6, seed=5, progress=False)
    c = augmented_distances(GaussianNoise(0.03), images, 6, seed=6, progress=False)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert (a[:, 0] != a[:, 1]).any()


def _write_module(tmp_path, name, body):
    (tmp_path / f'{name}.py').write_text(textwrap.dedent(body))
    sys.path.insert(0, str(tmp_path))


@pytest.fixture
def user_module(tmp_path):
    _write_module(tmp_path, 'density_user_aug', """
        import torch
        def jitter(x, generator=None):
            "+-3 grey levels per image, a random sign per sample"
            sign = torch.randint(0, 2, (x.shape[0], 1, 1, 1), generator=generator, device=x.device) * 2 - 1
            return (x.to(torch.int16) + 3 * sign).clamp(0, 255).to(torch.uint8)
        def no_generator(x):
            return x.flip(-1)
        def wrong_shape(x, generator=None):
            return x[:, :, :8]
        def wrong_dtype(x, generator=None):
            return x.float() / 255
        class Brighten:
            def __call__(self, x, generator=None):
                return (x.to(torch.int16) + 1).clamp(0, 255).to(torch.uint8)
        """)
    yield 'density_user_aug'
    sys.path.remove(str(tmp_path)); sys.modules.pop('density_user_aug', None)


def test_user_callable_by_spec(user_module, images):
    aug = load_callable(f'{user_module}:jitter')
    r = proximal_density(f'{user_module}:jitter', images, 4, progress=False)
    assert r.name == f'{user_module}:jitter'
    assert r.ecdf.F(0.0) < 1 and r.ecdf.F(3 / 255 + 1e-6) == 1.0     # within 3 grey levels, never beyond
    assert callable(load_callable(f'{user_module}:Brighten'))           # a class is instantiated
    r2 = proximal_density(f'{user_module}:no_generator', images, 2, progress=False)   # seeded via global RNGs
    assert r2.ecdf.n == 2 * len(images)


def test_wrong_shape_or_dtype_is_a_clear_error(user_module, images):
    with pytest.raises(AugflatError, match=r"returned shape .*expected a torch.uint8 tensor of shape"):
        augmented_distances(f'{user_module}:wrong_shape', images, 2, progress=False)
    with pytest.raises(AugflatError, match=r"returned dtype torch.float32"):
        augmented_distances(f'{user_module}:wrong_dtype', images, 2, progress=False)
    with pytest.raises(AugflatError, match="has no attribute"):
        load_callable(f'{user_module}:missing')
    with pytest.raises(AugflatError, match="cannot import module"):
        load_callable('surely_not_a_module_123:aug')
    with pytest.raises(AugflatError, match="module:callable"):
        load_callable('no_colon_here')


def test_mixture_forecast_matches_a_measured_mixture():
    "A random 50:50 choice between identity and a shift: the measured eCDF is the mixture of the two eCDFs."
    flat = torch.full((50, 3, 8, 8), 100, dtype=torch.uint8)

    def choose(x, generator=None):
        pick = torch.rand(x.shape[0], generator=generator) < 0.5
        return torch.where(pick[:, None, None, None], x, ConstantShift(20)(x))
    a = proximal_density(identity, flat, 20, progress=False, name='identity')
    b = proximal_density(ConstantShift(20), flat, 20, progress=False, name='shift')
    m = proximal_density(choose, flat, 20, progress=False, name='mix')
    rep = combination_report(a, b, measured=m, refs={'identity': a.F, 'shift': b.F})
    assert rep['fills_gap']
    assert np.allclose(rep['forecast_F'], 0.5)
    assert np.allclose(rep['measured_F'], 0.5, atol=0.05)              # 1000 Bernoulli(0.5) draws
    assert rep['forecast_order_matches']
    assert rank_among([0.5] * 4, {'identity': a.F, 'shift': b.F}) == [2, 2, 2, 2]


def test_feature_distance_with_a_model(images):
    from augflat.models import get_model
    model = get_model('convnet_small', num_classes=10).eval()
    dist = get_distance('feature', model=model)
    x = images[:4].float() / 255
    assert torch.allclose(dist(x, x), torch.zeros(4))
    d = augmented_distances(GaussianNoise(0.05), images[:8], 2, distance='feature', model=model, progress=False)
    assert d.shape == (8, 2) and (d > 0).all()


def test_paper_numbers_pass_their_own_ordering_check():
    t = paper_table1()
    assert check_ordering(t['cifar100'])['all']['holds']
    assert check_ordering(t['imagenet'], imagenet_like=True)['all']['holds']


def test_cli_with_user_augmentation(user_module, tmp_path):
    if not _cifar_available(): pytest.skip("cifar10.zip not found in any data root")
    parser = argparse.ArgumentParser(prog='augflat'); register_cli(parser.add_subparsers())
    out = tmp_path / 'out'
    args = parser.parse_args(['density', '--dataset', 'cifar10,cifar100', '--n-images', '16', '--samples-per-image', '3',
                              '--augs', '', '--aug', f'{user_module}:jitter', '--out', str(out), '--quiet'])
    rep = args.func(args)
    js = json.loads((out / 'density.json').read_text())
    assert js['datasets']['cifar10']['status'] == 'ok'
    assert js['datasets']['cifar100']['status'].startswith('absent') or js['datasets']['cifar100']['status'] == 'ok'
    assert js['datasets']['cifar10']['user']['rank'] == [1, 1, 1, 1]     # alone among zero references
    for f in ('density_table.csv', 'density_table.md', 'density_ecdf.png'):
        assert (out / f).stat().st_size > 0
    assert 'deviations' in js and js['config']['n_images'] == 16
