"PixMix, DeepAugment, StyleAug, FGSM and the augmentation registry: contract, determinism, bad inputs, mixing math."
import sys, textwrap
import numpy as np
import pytest
import torch

from augflat.core import AugflatError, make_generator
from augflat.augment.pixmix import PixMix, get_ab, mix_add, mix_multiply, fractal_set, sample_ifs, render_fractal
from augflat.augment.deepaug import (CAE, EDSR, DeepAugment, Noise2Net, train_cae, cae_weight_distortion,
                                     edsr_weight_distortion, deepaugment_copy)
from augflat.augment.styleaug import StyleAug, StyleRandomization
from augflat.augment.adversarial import FGSM
from augflat.augment.registry import get_augmentation, list_augmentations, Sequential

DEVICES = ['cpu'] + (['cuda'] if torch.cuda.is_available() else [])


@pytest.fixture(scope='module')
def images():
    g = torch.Generator().manual_seed(0)
    # smooth-ish random images (so ops like autocontrast/equalize have something to do)
    x = torch.randint(0, 256, (6, 3, 8, 8), generator=g).float()
    return torch.nn.functional.interpolate(x, size=32, mode='bilinear').round().to(torch.uint8)


@pytest.fixture(scope='module')
def tiny_cae(images):
    return train_cae(images, steps=1, batch_size=4)


@pytest.fixture(scope='module')
def fractals():
    return fractal_set(6, 40, seed=7, cache=False)


class TinyNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1); self.bn = torch.nn.BatchNorm2d(8); self.fc = torch.nn.Linear(8, 10)
    def forward(self, x): return self.fc(self.bn(self.conv(x)).relu().mean((2, 3)))


def _augs(tiny_cae, fractals):
    return {'pixmix': PixMix(mixing_set=fractals), 'deepaug': DeepAugment(cae=tiny_cae),
            'noise2net': Noise2Net(), 'styleaug': StyleAug(), 'styleaug_a1': StyleRandomization(alpha=1.0)}


@pytest.mark.parametrize('device', DEVICES)
def test_contract_uint8_shape_deterministic(images, tiny_cae, fractals, device):
    x = images.to(device)
    for name, aug in _augs(tiny_cae, fractals).items():
        a = aug(x, generator=make_generator(3, device)); b = aug(x, generator=make_generator(3, device))
        assert a.dtype == torch.uint8 and a.shape == x.shape and a.device == x.device, name
        assert torch.equal(a, b), f"{name} not deterministic under a seed"
        c = aug(x, generator=make_generator(4, device))
        assert not torch.equal(a, c) or name == 'noise2net', f"{name} ignores the seed"


def test_per_sample_randomness(images, fractals):
    # the same image repeated must get different augmentations within one batch
    x = images[:1].repeat(8, 1, 1, 1)
    for aug in (PixMix(mixing_set=fractals), StyleAug(), Noise2Net(p=1.0)):
        out = aug(x, generator=make_generator(0))
        assert len({o.numpy().tobytes() for o in out}) > 1, aug


def test_bad_params_rejected(images):
    for bad in (lambda: PixMix(k=-1), lambda: PixMix(beta=0), lambda: PixMix(severity=11),
                lambda: PixMix(mixing_set='/no/such/folder'), lambda: StyleAug(alpha=1.5), lambda: StyleAug(alpha='x'),
                lambda: FGSM(eps=0.03), lambda: FGSM(eps=-1 / 255), lambda: FGSM(alpha=0.013),
                lambda: DeepAugment(sources=('vae',)), lambda: DeepAugment(p_original=1.0),
                lambda: Noise2Net(eps_max=0), lambda: DeepAugment(sources=('edsr',))):
        with pytest.raises(AugflatError):
            bad()
    for aug in (StyleAug(), Noise2Net()):
        with pytest.raises(AugflatError, match='uint8'):
            aug(images.float())


def test_pixmix_mixing_closed_form():
    rng = np.random.default_rng(0)
    x1, x2 = rng.uniform(size=(4, 3, 5, 5)).astype(np.float32), rng.uniform(size=(4, 3, 5, 5)).astype(np.float32)
    x2[0, 0, 0, 0] = 0.0
    a = np.array([0.3, 0.9, 1.4, 1.9], np.float32); b = np.array([0.1, 0.7, -0.2, -0.9], np.float32)
    A, B = a[:, None, None, None], b[:, None, None, None]
    add_ref = (A * (2 * x1 - 1) + B * (2 * x2 - 1) + 1) / 2
    mul_ref = ((2 * x1) ** A * np.clip(2 * x2, 1e-37, None) ** B) / 2
    t = lambda v: torch.from_numpy(v)
    np.testing.assert_allclose(mix_add(t(x1), t(x2), t(a), t(b)).numpy(), add_ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(mix_multiply(t(x1), t(x2), t(a), t(b)).numpy(), mul_ref, rtol=1e-4, atol=1e-6)
    # get_ab: half the draws (a~Beta(3,1), b~Beta(1,3)), half (1+Beta(1,3), -Beta(1,3))
    A, B = get_ab(3.0, 100000, torch.Generator().manual_seed(1))
    first = A < 1
    assert abs(first.float().mean() - 0.5) < 0.01
    assert (B[first] > 0).all() and (B[~first] < 0).all()
    assert abs(A[first].mean() - 0.75) < 0.01 and abs(B[first].mean() - 0.25) < 0.01
    assert abs(A[~first].mean() - 1.25) < 0.01 and abs(B[~first].mean() + 0.25) < 0.01


def test_pixmix_k0_is_aug_or_identity(images, fractals):
    # with k=0 there are no mixing rounds: each output is x itself or one AugMix op of x (never a fractal mix)
    out = PixMix(k=0, mixing_set=fractals)(images.repeat(4, 1, 1, 1), generator=make_generator(0))
    same = (out == images.repeat(4, 1, 1, 1)).flatten(1).all(1)
    assert 0.2 < same.float().mean() < 0.9


def test_fractals_recipe_and_cache(tmp_path, monkeypatch):
    monkeypatch.setenv('AUGFLAT_CACHE', str(tmp_path))
    for seed in range(5):
        W, t, p = sample_ifs(np.random.default_rng(seed))
        s = np.linalg.svd(W, compute_uv=False); n = len(p)
        assert 2 <= n <= 7 and (s[:, 0] <= 1 + 1e-9).all() and abs(p.sum() - 1) < 1e-9
        assert (n + 5) / 2 - 1e-9 <= (s[:, 0] + 2 * s[:, 1]).sum() <= (n + 6) / 2 + 1e-9
    f1 = fractal_set(3, 32, seed=1)
    assert list(tmp_path.rglob('ifs_fractals_n3_s32_seed1.pt'))
    assert torch.equal(f1, fractal_set(3, 32, seed=1)) and f1.shape == (3, 3, 32, 32)
    assert np.array_equal(render_fractal(5, 32), render_fractal(5, 32))


def test_fgsm_exact_and_bn_untouched(images):
    torch.manual_seed(0)
    net = TinyNet().train(); y = torch.arange(len(images)) % 10
    before = [b.clone() for b in net.buffers()]
    for aug in (FGSM(), FGSM(random_start=True), FGSM(eps=4 / 255)):
        out = aug(images, generator=make_generator(0), model=net, y=y)
        assert out.dtype == torch.uint8 and out.shape == images.shape
        assert (out.int() - images.int()).abs().max() <= aug.eps_levels
        assert torch.equal(out, aug(images, generator=make_generator(0), model=net, y=y))
    assert all(torch.equal(a, b) for a, b in zip(before, net.buffers()))
    assert all(p.grad is None for p in net.parameters())
    with pytest.raises(AugflatError, match='needs the model'):
        FGSM()(images)


def test_deepaug_architectures_and_distortions():
    assert abs(sum(p.numel() for p in CAE().parameters()) - 2.24e6) < 0.03e6
    assert abs(sum(p.numel() for p in EDSR().parameters()) - 1.52e6) < 0.03e6
    sd = CAE().state_dict()
    for o in range(9):
        CAE().load_state_dict(cae_weight_distortion(sd, torch.Generator().manual_seed(o), option=o))
    sde = EDSR().state_dict()
    EDSR().load_state_dict(edsr_weight_distortion(sde, torch.Generator().manual_seed(0)))
    with torch.no_grad():
        assert CAE()(torch.rand(2, 3, 32, 32), generator=torch.Generator().manual_seed(0), distort=True).shape == (2, 3, 32, 32)


def test_deepaug_original_weights_loaded(tmp_path, images):
    torch.save(CAE().state_dict(), tmp_path / 'model_final.state')
    torch.save(EDSR().state_dict(), tmp_path / 'edsr_baseline_x4.pt')
    aug = DeepAugment(sources=('cae', 'edsr'), weights=tmp_path, p_original=0.0)
    assert not any('not available' in d for d in aug.deviations)
    out = aug(images, generator=make_generator(0))
    assert out.shape == images.shape and out.dtype == torch.uint8


def test_deepaug_copy_cached(tmp_path, monkeypatch, images, tiny_cae):
    monkeypatch.setenv('AUGFLAT_CACHE', str(tmp_path))
    aug = DeepAugment(sources=('cae',), p_original=0.0, cae=tiny_cae)
    c1 = deepaugment_copy(images, cache_key='t', aug=aug)
    assert list(tmp_path.rglob('t_cae-*_s0_c20_cpu.pt'))
    assert torch.equal(c1, deepaugment_copy(images, cache_key='t', aug=aug))


def test_deepaug_copy_resumes_and_ignores_chunk_order(tmp_path, monkeypatch, images, tiny_cae):
    # ~1 s: 6 tiny images, chunks of 2
    import augflat.augment.deepaug as D
    monkeypatch.setenv('AUGFLAT_CACHE', str(tmp_path))
    aug = DeepAugment(sources=('cae', 'noise2net'), cae=tiny_cae)
    kw = dict(source='cae', seed=3, chunk=2, aug=aug)
    whole = deepaugment_copy(images, **kw)                                    # no cache: straight through
    # chunks made in reverse order (another worker split) give the same copy
    rev = torch.cat([D._copy_chunk(aug, images, i, 2, 'cae', 3, 'cpu') for i in reversed(range(3))][::-1])
    assert torch.equal(whole, rev)
    # a run killed after its second chunk leaves a partial file; the rerun resumes from it and equals the whole
    real, calls = D._copy_chunk, []
    def dying(*a):
        calls.append(a[2])
        if len(calls) == 3: raise KeyboardInterrupt
        return real(*a)
    monkeypatch.setattr(D, '_copy_chunk', dying)
    with pytest.raises(KeyboardInterrupt): deepaugment_copy(images, cache_key='r', save_every=1, **kw)
    assert list(tmp_path.rglob('r_cae-*.partial'))
    monkeypatch.setattr(D, '_copy_chunk', real)
    calls.clear()
    monkeypatch.setattr(D, '_copy_chunk', lambda *a: (calls.append(a[2]), real(*a))[1])
    assert torch.equal(deepaugment_copy(images, cache_key='r', save_every=1, **kw), whole)
    assert calls == [2] and not list(tmp_path.rglob('*.partial'))             # only the unfinished chunk was made


def test_training_with_deepaug_reads_cached_copies(tmp_path, monkeypatch):
    # ~10 s: a 2-class, 32-image set, one epoch, twice; the second run must not run any DeepAugment network
    from augflat.data import ImageSet
    from augflat.train import train, get_recipe
    monkeypatch.setenv('AUGFLAT_CACHE', str(tmp_path / 'cache'))
    g = torch.Generator().manual_seed(0)
    x = torch.nn.functional.interpolate(torch.randint(0, 256, (32, 3, 8, 8), generator=g).float(), size=32, mode='bilinear')
    ds = ImageSet(x=x.round().to(torch.uint8), y=torch.arange(32) % 2, classes=['a', 'b'], name='toy')
    calls = {'distort': 0, 'call': 0}
    real_distort, real_call = DeepAugment.distort, DeepAugment.__call__
    def distort(self, *a, **k): calls['distort'] += 1; return real_distort(self, *a, **k)
    def call(self, *a, **k): calls['call'] += 1; return real_call(self, *a, **k)
    monkeypatch.setattr(DeepAugment, 'distort', distort); monkeypatch.setattr(DeepAugment, '__call__', call)
    recipe = get_recipe('cifar', epochs=1, batch_size=8)
    def run(out):
        aug = get_augmentation('deepaug+augmix', deepaug=dict(sources=('noise2net',), p_original=0.0))
        seen = []
        real_view = aug.parts[0].dataset_view
        aug.parts[0].dataset_view = lambda xb, idx, gen: seen.append(real_view(xb, idx, gen)) or seen[-1]
        train('convnet_small', ds, recipe, tmp_path / out, aug=aug, progress=False)
        return aug.parts[0], seen
    da, seen = run('first')
    assert calls['distort'] == 2 and calls['call'] == 0          # 32 images = 2 chunks of 20, generated once
    calls.update(distort=0, call=0)
    da2, seen2 = run('second')
    assert calls == {'distort': 0, 'call': 0}                    # cached: no DeepAugment image is generated
    assert len(seen2) == 4 and torch.equal(da2._copies['noise2net'], da._copies['noise2net'])
    assert not torch.equal(da2._copies['noise2net'], ds.x)       # the copies are distorted images


def test_styleaug_far_from_original(images):
    d = lambda a: ((a.float() - images.float()) / 255).pow(2).mean((1, 2, 3)).sqrt()
    assert d(StyleAug(alpha=0.5)(images, generator=make_generator(0))).median() > 0.1
    assert d(StyleRandomization(alpha=0.0)(images, generator=make_generator(0))).max() < 0.02


def test_registry(images, tiny_cae):
    names = list_augmentations()
    for n in ('none', 'augmix', 'randaug', 'pixmix', 'deepaug', 'styleaug', 'deepaug+augmix', 'styleaug+augmix',
              'deepaug+styleaug', 'fgsm', 'fgsm+augmix'):
        assert n in names
    with pytest.raises(AugflatError, match='valid names'):
        get_augmentation('mixup')
    with pytest.raises(AugflatError, match='accepts'):
        get_augmentation('pixmix', kk=3)
    with pytest.raises(AugflatError, match='one dict per part'):
        get_augmentation('deepaug+augmix', severity=3)
    combo = get_augmentation('deepaug+augmix', deepaug=dict(cae=tiny_cae))
    assert isinstance(combo, Sequential) and [type(p).__name__ for p in combo.parts] == ['DeepAugment', 'AugMix']
    assert combo.deviations and combo.aug_name == 'deepaug+augmix'
    fa = get_augmentation('fgsm+augmix')
    assert fa.needs_model and [type(p).__name__ for p in fa.parts] == ['AugMix', 'FGSM']
    net = TinyNet(); y = torch.zeros(len(images), dtype=torch.long)
    out = fa(images, generator=make_generator(0), model=net, y=y)
    assert out.dtype == torch.uint8 and out.shape == images.shape
    assert torch.equal(get_augmentation('none')(images), images)


def test_user_augmentation(tmp_path, monkeypatch, images):
    (tmp_path / 'user_augs_t.py').write_text(textwrap.dedent('''
        import torch
        def flip(x, generator=None): return x.flip(-1)
        def crop(x): return x[..., 1:, :]
        def as_float(x): return x.float()
        def not_tensor(x): return 3
        class Add:
            def __init__(self, v=1): self.v = v
            def __call__(self, x): return x + self.v
    '''))
    monkeypatch.syspath_prepend(str(tmp_path))
    assert torch.equal(get_augmentation('user_augs_t:flip')(images, generator=make_generator(0)), images.flip(-1))
    assert torch.equal(get_augmentation('user_augs_t:Add', v=2)(images), images + 2)
    for spec, msg in (('user_augs_t:crop', 'same'), ('user_augs_t:as_float', 'float32'), ('user_augs_t:not_tensor', 'not a tensor')):
        with pytest.raises(AugflatError, match=msg):
            get_augmentation(spec)(images)
    for spec, msg in (('user_augs_t:missing', 'no attribute'), ('nope_mod_zz:f', 'cannot import'), ('user_augs_t:', 'bad augmentation spec')):
        with pytest.raises(AugflatError, match=msg):
            get_augmentation(spec)


def test_real_images_grid_smoke():
    from augflat.core import data_roots
    if not any((r / 'cifar10.zip').exists() for r in data_roots()):
        pytest.skip('cifar10.zip not in any data root')
    from augflat.data import load_dataset
    x = load_dataset('cifar10', 'test')[:16].x
    out = PixMix(n_fractals=8, fractal_size=40)(x, generator=make_generator(0))
    assert out.shape == x.shape and (out != x).any()
