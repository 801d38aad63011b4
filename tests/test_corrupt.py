"End-to-end checks of augflat.corrupt on real CIFAR-10 test images: statistics, determinism, layout, resume, CLI."
import argparse, io, os, time
import numpy as np
import pytest
from PIL import Image
from skimage.color import rgb2hsv
from augflat.core import AugflatError, read_json
from augflat import corrupt as C


@pytest.fixture(scope='module')
def cifar():
    from augflat.data import load_dataset
    try: ds = load_dataset('cifar10', 'test')
    except AugflatError as e: pytest.skip(f"CIFAR-10 not available: {e}")
    idx = C.select_subset(ds.y.numpy(), 200)
    return ds.x[idx].permute(0, 2, 3, 1).numpy().copy(), ds.y[idx].numpy()


def test_subset_is_class_balanced(cifar):
    x, y = cifar
    assert np.bincount(y).tolist() == [20] * 10


def test_noise_statistics(cifar):
    x, _ = cifar; xf = x.astype(np.float64); mid = (x > 40) & (x < 215)
    for s in range(1, 6):
        d = C.corrupt(x, 'gaussian_noise', s).astype(np.float64) - xf
        assert abs(d[mid].std() / 255 - C.severity_params('gaussian_noise', s)) < 0.006
        sp = C.severity_params('speckle_noise', s)
        d = C.corrupt(x, 'speckle_noise', s).astype(np.float64) - xf
        assert abs((d[mid] / xf[mid]).std() / sp - 1) < 0.2


def test_color_statistics(cifar):
    x, _ = cifar; hsv = rgb2hsv(x / 255.)
    for s in range(1, 6):
        b = C.severity_params('brightness', s)
        v = rgb2hsv(C.corrupt(x, 'brightness', s) / 255.)[..., 2]
        ok = hsv[..., 2] + b < 0.98
        assert abs((v - hsv[..., 2])[ok].mean() - b) < 0.005
        c = C.severity_params('contrast', s)
        y = C.corrupt(x, 'contrast', s).astype(np.float64)
        assert abs(y.std(axis=(1, 2)).mean() / x.std(axis=(1, 2)).mean() - c) < 0.03


def test_jpeg_and_pixelate_match_pillow(cifar):
    x, _ = cifar; x = x[:20]
    for s in range(1, 6):
        q = C.severity_params('jpeg_compression', s)
        ref = []
        for im in x:
            b = io.BytesIO(); Image.fromarray(im).save(b, 'JPEG', quality=q); ref.append(np.asarray(Image.open(b)))
        assert (C.corrupt(x, 'jpeg_compression', s) == np.stack(ref)).all()
        k = int(32 * C.severity_params('pixelate', s))
        ref = np.stack([np.asarray(Image.fromarray(im).resize((k, k), Image.BOX).resize((32, 32), Image.BOX)) for im in x])
        assert (C.corrupt(x, 'pixelate', s) == ref).all()


def test_every_corruption_changes_images_more_at_higher_severity(cifar):
    x, _ = cifar; x = x[:20]; xf = x.astype(np.float64)
    for name in C.list_corruptions('all'):
        ch = [np.abs(C.corrupt(x, name, s).astype(np.float64) - xf).mean() for s in (1, 5)]
        assert ch[1] > 0, name
        if name not in ('elastic_transform', 'glass_blur', 'saturate', 'inverse_sparkles', 'pinch_and_twirl'):
            assert ch[1] > ch[0], (name, ch)


def test_worker_count_and_chunking_do_not_change_results(cifar, tmp_path):
    x, y = cifar; data = (x[:24], y[:24])
    names = ['glass_blur', 'frost', 'snow', 'spatter']
    a = C.generate_c(data, out_dir=tmp_path/'a', corruptions=names, workers=1, chunk_size=24, progress=False)
    b = C.generate_c(data, out_dir=tmp_path/'b', corruptions=names, workers=2, chunk_size=5, progress=False)
    for n in names: assert (np.asarray(C.load_c(a, n)[0]) == np.asarray(C.load_c(b, n)[0])).all(), n
    p1 = C.generate_p(data, out_dir=tmp_path/'p1', types=['snow', 'shot_noise'], workers=1, chunk_size=24, progress=False)
    p2 = C.generate_p(data, out_dir=tmp_path/'p2', types=['snow', 'shot_noise'], workers=2, chunk_size=7, progress=False)
    for t in ('snow', 'shot_noise'): assert (np.asarray(C.load_p(p1, t)) == np.asarray(C.load_p(p2, t))).all()


def test_layout_resume_and_manifest(cifar, tmp_path):
    x, y = cifar; data = (x[:10], y[:10])
    d = C.generate_c(data, out_dir=tmp_path, corruptions=['contrast', 'fog'], workers=1, progress=False)
    xs, ys = C.load_c(d, 'fog')
    assert xs.shape == (50, 32, 32, 3) and xs.dtype == np.uint8 and ys.dtype == np.int64
    assert (ys[20:30] == y[:10]).all()
    assert (np.asarray(C.load_c(d, 'fog', 3)[0]) == C.corrupt(x[:10], 'fog', 3)).all()
    m0 = os.path.getmtime(d/'contrast.npy')
    (d/'fog.npy').unlink()
    C.generate_c(data, out_dir=tmp_path, corruptions=['contrast', 'fog'], workers=1, progress=False)
    assert os.path.getmtime(d/'contrast.npy') == m0 and (d/'fog.npy').exists()
    m = read_json(d/'manifest.json')
    assert m['seed'] == 0 and m['table'] == 'cifar' and m['entries']['fog']['complete'] and m['deviations']
    with pytest.raises(AugflatError, match='other settings'):
        C.generate_c(data, out_dir=tmp_path, corruptions=['fog'], seed=1, workers=1, progress=False)


def test_p_schedules(cifar, tmp_path):
    x, _ = cifar; x = x[:6]
    assert (C.perturb(x, 'gaussian_noise')[:, 0] == x).all()
    assert (C.perturb(x, 'translate')[:, 7] == x).all()
    for t in ('rotate', 'scale', 'shear'): assert (C.perturb(x, t)[:, 15] == x).all(), t
    assert np.abs(C.perturb(x, 'brightness')[:, 15].astype(int) - x).max() <= 1
    tilt = C.perturb(x, 'tilt').astype(int)    # frame 15 is untilted but, as in the original, scaled by f/(f+1)
    assert np.abs(tilt[:, 15] - x).mean() < np.abs(tilt[:, 0] - x).mean()
    for t, n in C.P_FRAMES.items(): assert C.perturb(x[:1], t).shape == (1, n, 32, 32, 3)
    assert C.p_types() != C.p_types(reference_eval=True)


def test_bad_inputs(cifar):
    x, _ = cifar
    with pytest.raises(AugflatError, match='valid names: gaussian_noise'): C.corrupt(x, 'fogg', 1)
    for s in (0, 6, 2.5):
        with pytest.raises(AugflatError, match='severity'): C.corrupt(x, 'fog', s)
    with pytest.raises(AugflatError, match='unknown set'): C.generate_c((x, np.zeros(len(x), int)), set='x')
    with pytest.raises(AugflatError, match='valid names'): C.generate_c((x, np.zeros(len(x), int)), set='cbar', corruptions=['fog'])
    with pytest.raises(AugflatError): C.corrupt(x.astype(np.float32), 'fog', 1)


def test_frost_pictures_missing_gives_install_hint(monkeypatch):
    import importlib.util
    monkeypatch.setattr(importlib.util, 'find_spec', lambda name, *a: None)
    C.frost_images.cache_clear()
    with pytest.raises(AugflatError, match='pip install --no-deps imagecorruptions==1.1.2'):
        C.corrupt(np.zeros((1, 32, 32, 3), np.uint8), 'frost', 1)
    monkeypatch.undo(); C.frost_images.cache_clear()


def test_tables_by_image_size():
    assert [C.table_for(s) for s in (32, 64, 224)] == ['cifar', 'tinyimagenet', 'imagenet']
    big = (np.random.default_rng(0).random((1, 224, 224, 3)) * 255).astype(np.uint8)
    for n in ('gaussian_noise', 'pixelate', 'motion_blur', 'frost', 'fog'):
        assert C.corrupt(big, n, 3).shape == big.shape


def test_cli(cifar, tmp_path):
    p = argparse.ArgumentParser(); sub = p.add_subparsers(); C.register_cli(sub)
    args = p.parse_args(['corrupt', '--set', 'c', '--n', '10', '--corruptions', 'contrast', '--workers', '1',
                         '--out', str(tmp_path), '--no-progress'])
    d = args.func(args)
    assert (d/'contrast.npy').exists() and np.load(d/'contrast.npy').shape == (50, 32, 32, 3)
