"AugMix (+ its ops and JSD loss) against the original algorithm written with Pillow, and RandAugment against torchvision."
import io, math, zipfile
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, ImageEnhance
from scipy.stats import ks_2samp
from augflat.core import AugflatError, data_roots, make_generator
from augflat.augment.augmix import (AugMix, JSDLoss, random_augmix_op, apply_augmix_op, AUGMIX_OPS, AUGMIX_ALL_OPS,
                                    dirichlet, beta, gamma)
from augflat.augment.randaug import RandAugment
from conftest import zip_images



@pytest.fixture(scope='module')
def cifar(): return zip_images('cifar10.zip', 'cifar10/test/', 96)

@pytest.fixture(scope='module')
def tiny(): return zip_images('tiny-imagenet-200.zip', 'tiny-imagenet-200/val/images/', 24)

def to_pil(x): return [Image.fromarray(a.permute(1, 2, 0).numpy()) for a in x]
def from_pil(ims): return torch.from_numpy(np.stack([np.asarray(i) for i in ims])).permute(0, 3, 1, 2)

# ---- the original (google-research/augmix augmentations.py + cifar.py aug()), per image with Pillow
def pil_op(img, op, level, sign):
    s = img.size[0]; ip = lambda l, m: int(l * m / 10); fp = lambda l, m: float(l) * m / 10
    if op == 'autocontrast': return ImageOps.autocontrast(img)
    if op == 'equalize': return ImageOps.equalize(img)
    if op == 'posterize': return ImageOps.posterize(img, 4 - ip(level, 4))
    if op == 'rotate': return img.rotate(sign * ip(level, 30), resample=Image.BILINEAR)
    if op == 'solarize': return ImageOps.solarize(img, 256 - ip(level, 256))
    data = {'shear_x': (1, sign * fp(level, .3), 0, 0, 1, 0), 'shear_y': (1, 0, 0, sign * fp(level, .3), 1, 0),
            'translate_x': (1, 0, sign * ip(level, s / 3), 0, 1, 0), 'translate_y': (1, 0, 0, 0, 1, sign * ip(level, s / 3))}
    if op in data: return img.transform((s, s), Image.AFFINE, data[op], resample=Image.BILINEAR)
    return getattr(ImageEnhance, op.capitalize())(img).enhance(fp(level, 1.8) + 0.1)

def pil_augmix(img, rng, severity=3, width=3, depth=-1, alpha=1.0, all_ops=False):
    ops = AUGMIX_ALL_OPS if all_ops else AUGMIX_OPS
    ws = np.float32(rng.dirichlet([alpha] * width)); m = np.float32(rng.beta(alpha, alpha))
    mix = np.zeros((img.size[1], img.size[0], 3), np.float32)
    for i in range(width):
        im = img.copy()
        for _ in range(depth if depth > 0 else rng.integers(1, 4)):
            im = pil_op(im, ops[rng.integers(len(ops))], rng.uniform(0.1, severity), -1 if rng.uniform() > 0.5 else 1)
        mix += ws[i] * np.asarray(im, np.float32)
    return (1 - m) * np.asarray(img, np.float32) + m * mix

@pytest.mark.parametrize('op', AUGMIX_ALL_OPS)
def test_each_op_equals_original(cifar, tiny, op):
    for x in (cifar, tiny):
        lv = torch.linspace(0.1, 9.99, len(x)).double()   # levels are drawn from U(0.1, severity <= 10)
        sg = torch.where(torch.arange(len(x)) % 2 == 0, 1., -1.).double()
        ref = from_pil([pil_op(p, op, float(l), float(s)) for p, l, s in zip(to_pil(x), lv, sg)])
        d = (apply_augmix_op(x, op, lv, sg).int() - ref.int()).abs()
        assert d.float().mean() < 0.01 and d.max() <= 1, op

def test_translate_scales_with_image_size(tiny):
    # 64-px images: level 10 translates by int(10 * 64/3 / 10) = 21 px (the original's IMAGE_SIZE=32 global gives 10)
    out = apply_augmix_op(tiny, 'translate_x', 10.0, 1.0)
    assert out.shape == tiny.shape
    assert torch.equal(out[..., :64 - 21], tiny[..., 21:]) and (out[..., 64 - 21:] == 0).all()

@pytest.mark.parametrize('all_ops', [False, True])
def test_augmix_distribution_matches_original(cifar, all_ops):
    draws = 6; rng = np.random.default_rng(1); P = to_pil(cifar)
    ref = torch.from_numpy(np.stack([pil_augmix(p, rng, all_ops=all_ops) for _ in range(draws) for p in P])).permute(0, 3, 1, 2)
    xs = cifar.repeat(draws, 1, 1, 1)
    ours = AugMix(all_ops=all_ops)(xs, generator=make_generator(1)).float()
    for f in (lambda d: d.abs().mean((1, 2, 3)), lambda d: d.flatten(1).norm(dim=1), lambda d: d.mean((1, 2, 3))):
        a, b = f(ours - xs.float()), f(ref - xs.float())
        assert ks_2samp(a.numpy(), b.numpy()).pvalue > 1e-3
        assert abs(a.mean() - b.mean()) < 0.15 * b.abs().mean() + 0.5

def test_augmix_contract(cifar, tiny):
    for x in (cifar[:16], tiny[:4]):
        for aug in (AugMix(), AugMix(all_ops=True, depth=2, width=4, alpha=0.5, severity=1)):
            out = aug(x, generator=make_generator(0))
            assert out.dtype == torch.uint8 and out.shape == x.shape
            assert torch.equal(out, aug(x, generator=make_generator(0)))
            assert not torch.equal(out, aug(x, generator=make_generator(1)))
    assert AugMix()(cifar[:0]).shape == cifar[:0].shape
    for kw, msg in [(dict(severity=0), 'severity'), (dict(width=0), 'width'), (dict(depth=0), 'depth'), (dict(alpha=0), 'alpha')]:
        with pytest.raises(AugflatError, match=msg): AugMix(**kw)
    with pytest.raises(AugflatError, match='uint8'): AugMix()(cifar.float())

def test_random_augmix_op(cifar):
    a = random_augmix_op(cifar, generator=make_generator(0))
    assert torch.equal(a, random_augmix_op(cifar, generator=make_generator(0))) and a.dtype == torch.uint8
    # one op: each output equals one of the 13 ops of the original at some level (spot check: fraction unchanged is small)
    assert (a != cifar).flatten(1).any(1).float().mean() > 0.6
    with pytest.raises(AugflatError, match='severity'): random_augmix_op(cifar, severity=20)

def test_mixing_distributions():
    g = make_generator(0)
    w = dirichlet(1.0, 40000, 3, g)
    assert torch.allclose(w.sum(1), torch.ones(40000, dtype=torch.float64))
    assert abs(w.mean() - 1 / 3) < 0.005 and abs(w[:, 0].var() - 2 / 36) < 0.003
    for a, b in [(1, 1), (3, 1), (0.5, 0.5)]:
        s = beta(a, b, 40000, g); assert abs(s.mean() - a / (a + b)) < 0.01
    for k in (0.3, 1.0, 4.0):
        s = gamma(k, (40000,), g); assert abs(s.mean() - k) < 0.03 * max(k, 1) and abs(s.var() - k) < 0.08 * max(k, 1)

def test_jsd_matches_original_formula():
    g = make_generator(0)
    lc, l1, l2 = (torch.randn(16, 10, generator=g) * 3 for _ in range(3))
    p_clean, p_aug1, p_aug2 = F.softmax(lc, dim=1), F.softmax(l1, dim=1), F.softmax(l2, dim=1)
    p_mixture = torch.clamp((p_clean + p_aug1 + p_aug2) / 3., 1e-7, 1).log()
    ref = 12 * (F.kl_div(p_mixture, p_clean, reduction='batchmean') + F.kl_div(p_mixture, p_aug1, reduction='batchmean')
                + F.kl_div(p_mixture, p_aug2, reduction='batchmean')) / 3.
    jsd = JSDLoss()
    assert jsd.n_views == 2 and torch.allclose(jsd(lc, [l1, l2]), ref)
    assert jsd(lc, [lc, lc]).abs() < 1e-6
    lc.requires_grad_(True); jsd(lc, [l1, l2]).backward(); assert lc.grad is not None
    with pytest.raises(AugflatError): jsd(lc, [l1])
    with pytest.raises(AugflatError): JSDLoss(lam=-1)

@pytest.mark.parametrize('n_m', [(2, 9), (3, 5), (1, 30)])
def test_randaugment_distribution_matches_torchvision(cifar, n_m):
    from torchvision.transforms import RandAugment as TVRandAugment
    n, m = n_m; draws = 6
    torch.manual_seed(0); tv = TVRandAugment(n, m)
    ref = from_pil([tv(p) for _ in range(draws) for p in to_pil(cifar)]).float()
    xs = cifar.repeat(draws, 1, 1, 1)
    ours = RandAugment(n, m)(xs, generator=make_generator(0)).float()
    a, b = (ours - xs.float()).abs().mean((1, 2, 3)), (ref - xs.float()).abs().mean((1, 2, 3))
    assert ks_2samp(a.numpy(), b.numpy()).pvalue > 1e-3
    assert abs(a.mean() - b.mean()) < 0.15 * b.mean() + 0.5
    assert abs((a == 0).float().mean() - (b == 0).float().mean()) < 0.06

def test_randaugment_contract(cifar, tiny):
    for x in (cifar[:16], tiny[:4]):
        out = RandAugment()(x, generator=make_generator(0))
        assert out.dtype == torch.uint8 and out.shape == x.shape
        assert torch.equal(out, RandAugment()(x, generator=make_generator(0)))
    for kw, msg in [(dict(magnitude=31), 'magnitude'), (dict(num_ops=-1), 'num_ops'), (dict(num_magnitude_bins=1), 'bins')]:
        with pytest.raises(AugflatError, match=msg): RandAugment(**kw)

@pytest.mark.skipif(not torch.cuda.is_available(), reason='no CUDA device')
def test_cuda(cifar):
    x = cifar.cuda(); gen = lambda: torch.Generator('cuda').manual_seed(0)
    for aug in (AugMix(), AugMix(all_ops=True), RandAugment()):
        out = aug(x, generator=gen())
        assert out.device.type == 'cuda' and out.dtype == torch.uint8 and torch.equal(out, aug(x, generator=gen()))
    with pytest.raises(AugflatError, match='generator'): AugMix()(x, generator=torch.Generator())


def test_grouped_ops_equal_one_sample_at_a_time():
    # < 1 s. A batch mixing every op (tiny non-square images: the sort keys of neighbouring op groups are closest)
    # must equal each sample processed alone: the one-sort grouping and the scatter back lose or swap nothing
    from augflat.augment.randaug import apply_randaug_ops
    from augflat.augment.augmix import _apply_ops, AUGMIX_ALL_OPS
    x = torch.randint(0, 256, (56, 3, 5, 7), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    op, sign = torch.arange(56) % 14, 1 - 2 * (torch.arange(56) // 14 % 2)
    y = apply_randaug_ops(x, op, sign, 9)
    assert all(torch.equal(y[i:i + 1], apply_randaug_ops(x[i:i + 1], op[i:i + 1], sign[i:i + 1], 9)) for i in range(56))
    k = (torch.arange(56) % 14 - 1).clamp(max=12)                       # -1: unchanged
    lvl, sg = torch.linspace(0.1, 10, 56).double(), sign.double()
    y = _apply_ops(x, k, lvl, sg, AUGMIX_ALL_OPS)
    assert all(torch.equal(y[i:i + 1], _apply_ops(x[i:i + 1], k[i:i + 1], lvl[i:i + 1], sg[i:i + 1], AUGMIX_ALL_OPS))
               for i in range(56))
