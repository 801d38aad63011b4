"""Vectorized corruption generation (augflat.corrupt) against a straightforward per-image loop of the same corruptions.

The loop versions below are written the way the original scripts run them: one image at a time with numpy / scipy /
scikit-image / PIL (glass blur with its per-pixel Python loop, zoom blur with scipy's zoom per factor, ...).
Both sides corrupt the same real CIFAR-10 test images with all 19 corruptions x 5 severities in the same run.

    python benchmarks/corrupt/run.py [--n 200] [--workers 2]
Prints wall and CPU seconds for: the loop (1 process), augflat's batched functions (1 process) and
augflat.corrupt.generate_c (`--workers` processes), and the ratios.
"""
import argparse, io, math, time, tempfile
import numpy as np
from PIL import Image
from scipy.ndimage import zoom as scizoom, map_coordinates, correlate, gaussian_filter
from skimage.filters import gaussian
from skimage.color import rgb2hsv, hsv2rgb
from skimage.util import random_noise
from augflat import corrupt as C

P = lambda name, s: C.severity_params(name, s, 'cifar')

# ---------------- straightforward per-image versions (float HxWx3 in [0,255] -> float/uint8) ----------------
def l_gaussian_noise(x, s, r): return np.clip(x / 255. + r.normal(size=x.shape, scale=P('gaussian_noise', s)), 0, 1) * 255
def l_shot_noise(x, s, r): c = P('shot_noise', s); return np.clip(r.poisson(x / 255. * c) / c, 0, 1) * 255
def l_impulse_noise(x, s, r):
    return np.clip(random_noise(x / 255., mode='s&p', amount=P('impulse_noise', s), rng=int(r.integers(2**31))), 0, 1) * 255
def l_speckle_noise(x, s, r): x = x / 255.; return np.clip(x + x * r.normal(size=x.shape, scale=P('speckle_noise', s)), 0, 1) * 255
def l_gaussian_blur(x, s, r): return np.clip(gaussian(x / 255., sigma=P('gaussian_blur', s), channel_axis=-1), 0, 1) * 255
def l_glass_blur(x, s, r):
    sig, d, it = P('glass_blur', s)
    x = np.uint8(gaussian(x / 255., sigma=sig, channel_axis=-1) * 255)
    for _ in range(it):
        for h in range(32 - d, d, -1):
            for w in range(32 - d, d, -1):
                dx, dy = r.integers(-d, d, size=(2,))
                x[h, w] = x[h + dy, w + dx]
    return np.clip(gaussian(x / 255., sigma=sig, channel_axis=-1), 0, 1) * 255
def l_defocus_blur(x, s, r):
    k = C.disk_kernel(*P('defocus_blur', s)).astype(np.float64)
    x = x / 255.
    return np.clip(np.stack([correlate(x[..., c], k, mode='mirror') for c in range(3)], -1), 0, 1) * 255
def _shift(img, dx, dy):
    H, W = img.shape[:2]
    rows = np.clip(np.arange(H) + dy, 0, H - 1); cols = np.clip(np.arange(W) + dx, 0, W - 1)
    return img[rows][:, cols]
def _mblur(x, radius, sigma, angle):
    k, dr, dc = C.motion_kernel(radius, sigma, angle)
    out = np.zeros_like(x, dtype=np.float64)
    for w, a, b in zip(k, dr, dc): out += w * _shift(x, b, a)
    return np.rint(out)
def l_motion_blur(x, s, r): rad, sig = P('motion_blur', s); return np.clip(_mblur(x, rad, sig, r.uniform(-45, 45)), 0, 255)
def _czoom(img, z):
    h = img.shape[0]; ch = int(np.ceil(h / z)); top = (h - ch) // 2
    img = scizoom(img[top:top + ch, top:top + ch], (z, z, 1), order=1); t = (img.shape[0] - h) // 2
    return img[t:t + h, t:t + h]
def l_zoom_blur(x, s, r):
    x = (x / 255.).astype(np.float32); out = np.zeros_like(x); zs = P('zoom_blur', s)
    for z in zs: out += _czoom(x, z)
    return np.clip((x + out) / (len(zs) + 1), 0, 1) * 255
def l_snow(x, s, r):
    c = P('snow', s); x = x.astype(np.float32) / 255.
    layer = _czoom(r.normal(size=(32, 32), loc=c[0], scale=c[1])[..., None], c[2])[..., 0]
    layer[layer < c[3]] = 0
    layer = np.uint8(np.clip(layer, 0, 1) * 255).astype(np.float64)
    layer = _mblur(layer[..., None], c[4], c[5], r.uniform(-135, -45))[..., 0] / 255.
    gray = (x[..., 0] * .299 + x[..., 1] * .587 + x[..., 2] * .114)[..., None]
    x = c[6] * x + (1 - c[6]) * np.maximum(x, gray * 1.5 + .5)
    return np.clip(x + layer[..., None] + np.rot90(layer[..., None], 2), 0, 1) * 255
def l_frost(x, s, r):
    c = P('frost', s); f = C.frost_images(0.2)[r.integers(5)]
    a, b = r.integers(0, f.shape[0] - 32), r.integers(0, f.shape[1] - 32)
    return np.clip(c[0] * x + c[1] * f[a:a + 32, b:b + 32], 0, 255)
def _plasma(r, mapsize, decay):
    m = np.empty((mapsize, mapsize)); m[0, 0] = 0; step = mapsize; wib = 100.
    def wm(a): return a / 4 + wib * r.uniform(-wib, wib, a.shape)
    while step >= 2:
        h = step // 2
        cr = m[0::step, 0::step]; sq = cr + np.roll(cr, -1, 0); sq += np.roll(sq, -1, 1)
        m[h::step, h::step] = wm(sq)
        dr, ul = m[h::step, h::step], m[0::step, 0::step]
        m[0::step, h::step] = wm(dr + np.roll(dr, 1, 0) + ul + np.roll(ul, -1, 1))
        m[h::step, 0::step] = wm(dr + np.roll(dr, 1, 1) + ul + np.roll(ul, -1, 0))
        step //= 2; wib /= decay
    m -= m.min(); return m / m.max()
def l_fog(x, s, r):
    c = P('fog', s); x = x / 255.; mx = x.max()
    x = x + c[0] * _plasma(r, 32, c[1])[..., None]
    return np.clip(x * mx / (mx + c[0]), 0, 1) * 255
def l_brightness(x, s, r):
    h = rgb2hsv(x / 255.); h[..., 2] = np.clip(h[..., 2] + P('brightness', s), 0, 1); return np.clip(hsv2rgb(h), 0, 1) * 255
def l_saturate(x, s, r):
    c = P('saturate', s); h = rgb2hsv(x / 255.); h[..., 1] = np.clip(h[..., 1] * c[0] + c[1], 0, 1)
    return np.clip(hsv2rgb(h), 0, 1) * 255
def l_contrast(x, s, r):
    x = x / 255.; m = x.mean(axis=(0, 1), keepdims=True); return np.clip((x - m) * P('contrast', s) + m, 0, 1) * 255
def l_jpeg_compression(x, s, r):
    b = io.BytesIO(); Image.fromarray(np.uint8(x)).save(b, 'JPEG', quality=P('jpeg_compression', s)); return np.asarray(Image.open(b))
def l_pixelate(x, s, r):
    k = int(32 * P('pixelate', s)); im = Image.fromarray(np.uint8(x))
    return np.asarray(im.resize((k, k), Image.BOX).resize((32, 32), Image.BOX))
def l_elastic_transform(x, s, r):
    c = P('elastic_transform', s); img = x.astype(np.float32) / 255.
    ctr = np.float32([32, 32]) // 2; sq = 32 // 3
    p1 = np.float32([ctr + sq, [ctr[0] + sq, ctr[1] - sq], ctr - sq]); p2 = p1 + r.uniform(-c[2], c[2], p1.shape)
    M = np.linalg.solve(np.c_[p1, np.ones(3)], p2).T; Mi = np.linalg.inv(np.r_[M, [[0, 0, 1]]])
    yy, xx = np.mgrid[0:32, 0:32].astype(np.float64)
    sx, sy = Mi[0, 0] * xx + Mi[0, 1] * yy + Mi[0, 2], Mi[1, 0] * xx + Mi[1, 1] * yy + Mi[1, 2]
    img = np.stack([map_coordinates(img[..., k], [sy, sx], order=1, mode='mirror') for k in range(3)], -1)
    dx = gaussian(r.uniform(-1, 1, (32, 32)), c[1], mode='reflect', truncate=3) * c[0]
    dy = gaussian(r.uniform(-1, 1, (32, 32)), c[1], mode='reflect', truncate=3) * c[0]
    out = np.stack([map_coordinates(img[..., k], [yy + dy, xx + dx], order=1, mode='reflect') for k in range(3)], -1)
    return np.clip(out, 0, 1) * 255
def l_spatter(x, s, r):   # the OpenCV pipeline has no per-image numpy/scipy reference: augflat's functions on 1 image
    return C.corrupt(np.uint8(x), 'spatter', s, seed=int(r.integers(2**31))).astype(np.float64)

LOOP = {n: globals()[f'l_{n}'] for n in C.list_corruptions('c+extra')}

def timed(fn):
    t, c = time.perf_counter(), time.process_time(); out = fn()
    return out, time.perf_counter() - t, time.process_time() - c

def main():
    ap = argparse.ArgumentParser(); ap.add_argument('--n', type=int, default=200); ap.add_argument('--workers', type=int, default=2)
    a = ap.parse_args()
    from augflat.data import load_dataset
    ds = load_dataset('cifar10', 'test'); idx = C.select_subset(ds.y.numpy(), a.n)
    x = ds.x[idx].permute(0, 2, 3, 1).numpy().copy()
    rows = []
    for name in C.list_corruptions('c+extra'):
        r = np.random.default_rng(0)
        _, lw, lc = timed(lambda: [np.uint8(np.clip(LOOP[name](im.astype(np.float64), s, r), 0, 255)) for s in range(1, 6) for im in x])
        _, vw, vc = timed(lambda: [C.corrupt(x, name, s) for s in range(1, 6)])
        rows.append((name, lw, lc, vw, vc))
        print(f"{name:18s} loop {lw:6.2f}s wall {lc:6.2f}s cpu | batched {vw:6.2f}s wall {vc:6.2f}s cpu | x{lc / max(vc, 1e-9):5.1f} cpu")
    LW, LC, VW, VC = (sum(r[i] for r in rows) for i in (1, 2, 3, 4))
    with tempfile.TemporaryDirectory() as tmp:
        _, gw, _ = timed(lambda: C.generate_c((x, ds.y[idx].numpy()), out_dir=tmp, set='c+extra', workers=a.workers, progress=False))
        m = C.read_json(f"{tmp}/manifest.json")['entries']; gc = sum(e['worker_cpu_s'] for e in m.values())
    print(f"\n{a.n} images x 19 corruptions x 5 severities")
    print(f"per-image loop, 1 process:        {LW:7.1f}s wall {LC:7.1f}s cpu")
    print(f"augflat batched, 1 process:       {VW:7.1f}s wall {VC:7.1f}s cpu   ratio x{LW / VW:.1f} wall, x{LC / VC:.1f} cpu")
    print(f"augflat generate_c, {a.workers} workers:   {gw:7.1f}s wall {gc:7.1f}s cpu   ratio x{LW / gw:.1f} wall (loop wall / generate wall)")

if __name__ == '__main__': main()
