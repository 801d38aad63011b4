"Per-op checks of augflat.augment.ops (and RandAugment's ops) against Pillow on real CIFAR-10 and TinyImageNet images."
import io, zipfile
import numpy as np
import pytest
import torch
from PIL import Image, ImageOps, ImageEnhance
from augflat.core import AugflatError, data_roots, make_generator
from augflat.augment import ops as O
from conftest import zip_images



@pytest.fixture(scope='module', params=['cifar10', 'tinyimagenet'])
def images(request):
    if request.param == 'cifar10': return zip_images('cifar10.zip', 'cifar10/test/', 160)
    return zip_images('tiny-imagenet-200.zip', 'tiny-imagenet-200/val/images/', 60)

def to_pil(x): return [Image.fromarray(a.permute(1, 2, 0).numpy()) for a in x]
def from_pil(ims): return torch.from_numpy(np.stack([np.asarray(i) for i in ims])).permute(0, 3, 1, 2)

def stats(ours, ref):
    assert ours.dtype == torch.uint8 and ours.shape == ref.shape
    d = (ours.int() - ref.int()).abs()
    return d.float().mean().item(), (d > 0).float().mean().item(), d.max().item()

# ---- point ops: required within 1 level on average; observed: identical to Pillow
@pytest.mark.parametrize('name', ['autocontrast', 'equalize'])
def test_table_ops_match_pillow(images, name):
    m, frac, mx = stats(getattr(O, name)(images), from_pil([getattr(ImageOps, name)(p) for p in to_pil(images)]))
    assert m < 0.01 and frac < 0.01, (m, frac)

@pytest.mark.parametrize('bits', [0, 1, 3, 4, 7, 8])
def test_posterize_matches_pillow(images, bits):
    if bits == 0: ref = torch.zeros_like(images)  # Pillow requires bits >= 1; 0 keeps no bit (torchvision allows it)
    else: ref = from_pil([ImageOps.posterize(p, bits) for p in to_pil(images)])
    assert stats(O.posterize(images, bits), ref)[2] == 0

@pytest.mark.parametrize('thr', [0, 1, 77, 128.5, 179.5, 255, 256])
def test_solarize_matches_pillow(images, thr):
    assert stats(O.solarize(images, thr), from_pil([ImageOps.solarize(p, thr) for p in to_pil(images)]))[2] == 0

@pytest.mark.parametrize('name', ['color', 'contrast', 'brightness', 'sharpness'])
def test_enhance_ops_match_pillow(images, name):
    E = getattr(ImageEnhance, name.capitalize())
    for f in (0.0, 0.1, 0.46, 1.0, 1.54, 1.9, 3.0):
        m, frac, mx = stats(getattr(O, name)(images, f), from_pil([E(p).enhance(f) for p in to_pil(images)]))
        assert m < 0.01 and mx <= 1, (name, f, m, mx)

def test_per_sample_parameters(images):
    n = len(images); P = to_pil(images)
    f = torch.linspace(0.1, 1.9, n)
    assert stats(O.contrast(images, f), from_pil([ImageEnhance.Contrast(p).enhance(float(v)) for p, v in zip(P, f)]))[0] < 0.01
    b = torch.arange(n) % 8 + 1
    assert stats(O.posterize(images, b), from_pil([ImageOps.posterize(p, int(v)) for p, v in zip(P, b)]))[2] == 0

# ---- geometric ops. Tolerance: bilinear within 1 level on < 1% of pixels (float32 sampling vs Pillow's double);
# ---- nearest identical except points exactly on the image border (< 0.1% of pixels)
R = {'bilinear': Image.BILINEAR, 'nearest': Image.NEAREST}

def _check_geo(ours, ref, mode):
    m, frac, mx = stats(ours, ref)
    if mode == 'bilinear': assert frac < 0.01 and mx <= 1, (m, frac, mx)
    else: assert frac < 0.001, (m, frac, mx)
    return m, frac

@pytest.mark.parametrize('mode', list(R))
def test_rotate_matches_pillow(images, mode):
    for deg in (-30, -9, -1, 3, 17.3, 29.9, 90, 180, 270):
        _check_geo(O.rotate(images, deg, mode), from_pil([p.rotate(deg, resample=R[mode]) for p in to_pil(images)]), mode)
    d = torch.linspace(-30, 30, len(images))
    _check_geo(O.rotate(images, d, mode), from_pil([p.rotate(float(v), resample=R[mode]) for p, v in zip(to_pil(images), d)]), mode)

@pytest.mark.parametrize('mode', list(R))
@pytest.mark.parametrize('axis', ['x', 'y'])
def test_shear_matches_pillow(images, mode, axis):
    for s in (-0.3, -0.09, 0.01, 0.17, 0.3):
        data = (1, s, 0, 0, 1, 0) if axis == 'x' else (1, 0, 0, s, 1, 0)
        ref = from_pil([p.transform(p.size, Image.AFFINE, data, resample=R[mode]) for p in to_pil(images)])
        _check_geo(getattr(O, f'shear_{axis}')(images, s, mode), ref, mode)

@pytest.mark.parametrize('mode', list(R))
@pytest.mark.parametrize('axis', ['x', 'y'])
def test_translate_matches_pillow(images, mode, axis):
    w = images.shape[-1]
    for t in (-w // 3, -3, -1, 2, 2.5, 7.25, w // 2):
        data = (1, 0, t, 0, 1, 0) if axis == 'x' else (1, 0, 0, 0, 1, t)
        ref = from_pil([p.transform(p.size, Image.AFFINE, data, resample=R[mode]) for p in to_pil(images)])
        ours = getattr(O, f'translate_{axis}')(images, t, mode)
        if float(t).is_integer(): assert stats(ours, ref)[2] == 0    # whole-pixel shifts are exact
        else: _check_geo(ours, ref, mode)

def test_general_affine_matches_pillow(images):
    g = torch.Generator().manual_seed(0)
    m = torch.eye(2, 3).expand(len(images), 2, 3) + 0.15 * torch.randn(len(images), 2, 3, generator=g) * torch.tensor([[1, 1, 8], [1, 1, 8]])
    ref = from_pil([p.transform(p.size, Image.AFFINE, tuple(v.flatten().tolist()), resample=Image.BILINEAR) for p, v in zip(to_pil(images), m)])
    _check_geo(O.affine(images, m), ref, 'bilinear')

# ---- RandAugment's ops equal torchvision's on PIL images (all 14 ops, both signs, several bins)
def test_randaug_ops_match_torchvision(images):
    from torchvision.transforms import autoaugment as TA, InterpolationMode
    from augflat.augment.randaug import apply_randaug_ops, RANDAUG_OPS
    names = ['Identity', 'ShearX', 'ShearY', 'TranslateX', 'TranslateY', 'Rotate', 'Brightness', 'Color', 'Contrast',
             'Sharpness', 'Posterize', 'Solarize', 'AutoContrast', 'Equalize']
    assert len(names) == len(RANDAUG_OPS)
    x = images[:40]; P = to_pil(x)
    space = TA.RandAugment()._augmentation_space(31, tuple(x.shape[2:]))
    for mag_bin in (5, 9, 30):
        for k, name in enumerate(names):
            for sign in (1, -1):
                mags, signed = space[name]
                mag = (float(mags[mag_bin]) if mags.ndim else 0.0) * (sign if signed else 1)
                ref = from_pil([TA._apply_op(p, name, mag, InterpolationMode.NEAREST, None) for p in P])
                ours = apply_randaug_ops(x, torch.full((len(x),), k), torch.full((len(x),), sign), mag_bin)
                m, frac, mx = stats(ours, ref)
                assert frac < 0.001, (name, sign, mag_bin, m, frac)

# ---- contract: uint8 in/out, clear errors, devices
def test_errors():
    x = torch.zeros(2, 3, 8, 8, dtype=torch.uint8)
    for bad, msg in [(lambda: O.identity(x.float()), 'uint8'), (lambda: O.identity(x[0]), 'N×3×H×W'),
                     (lambda: O.identity(x[:, :1]), 'N×3×H×W'), (lambda: O.posterize(x, 9), '[0, 8]'),
                     (lambda: O.posterize(x, 1.5), 'integers'), (lambda: O.solarize(x, 300), '[0, 256]'),
                     (lambda: O.color(x, -1), 'factor'), (lambda: O.rotate(x, torch.ones(3)), 'one value per sample'),
                     (lambda: O.rotate(x, float('inf')), 'finite'), (lambda: O.affine(x, torch.zeros(3, 3)), 'N×2×3'),
                     (lambda: O.shear_x(x, 0.1, 'cubic'), 'interpolation'), (lambda: O.translate_x(x, 100), 'offset')]:
        with pytest.raises(AugflatError, match=None) as e: bad()
        assert msg in str(e.value), (msg, str(e.value))

def test_empty_and_dtype():
    x = torch.zeros(0, 3, 8, 8, dtype=torch.uint8)
    for f in (O.autocontrast, O.equalize, O.identity): assert f(x).shape == x.shape
    assert O.rotate(x, torch.zeros(0)).shape == x.shape

@pytest.mark.skipif(not torch.cuda.is_available(), reason='no CUDA device')
def test_cuda_matches_cpu():
    x = torch.randint(0, 256, (64, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    d = torch.linspace(-30, 30, 64)
    for f, a in [(O.rotate, d), (O.shear_x, d / 100), (O.equalize, None), (O.autocontrast, None), (O.sharpness, d.abs() / 20),
                 (O.contrast, d.abs() / 20), (O.color, d.abs() / 20), (O.solarize, d.abs() * 8)]:
        ours = f(x.cuda(), None if a is None else a.cuda()).cpu()
        assert (ours.int() - f(x, a).int()).abs().le(1).all(), f.__name__
