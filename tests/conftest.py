import io, os, zipfile
import numpy as np, pytest, torch
from PIL import Image
from augflat.core import AugflatError


def require_dataset(name):
    "Skip (with the reason) when a real dataset is absent from every data root."
    from augflat.data import locate
    try: locate(name)
    except AugflatError as e: pytest.skip(f"real dataset {name!r} absent: {str(e).splitlines()[0]}")


@pytest.fixture
def cli_env(tmp_path):
    "Environment for CLI subprocesses: the same data roots and cache as the test process."
    env = dict(os.environ)
    env.setdefault('AUGFLAT_CACHE', os.path.expanduser('~/.cache/augflat'))
    env['PYTHONUNBUFFERED'] = '1'
    return env


def zip_images(zname, prefix, n):
    "n real images spread over an archive of ../shared/data (read straight from the zip), as a uint8 N×3×H×W tensor."
    from augflat.core import data_roots
    for root in data_roots():
        if (root / zname).exists():
            with zipfile.ZipFile(root / zname) as z:
                names = sorted(m for m in z.namelist() if m.startswith(prefix) and m.lower().endswith(('.jpg', '.jpeg')))
                names = names[::max(1, len(names) // n)][:n]
                arr = [np.asarray(Image.open(io.BytesIO(z.read(m))).convert('RGB')) for m in names]
            return torch.from_numpy(np.stack(arr)).permute(0, 3, 1, 2).contiguous()
    pytest.skip(f"{zname} not found in the data roots (set AUGFLAT_DATA)")


class PixelOracle(torch.nn.Module):
    "Predicts the class written into pixel (0,0) of the red channel, so every per-image outcome is chosen by hand."
    def __init__(self, k=10):
        super().__init__(); self.k = k; self.p = torch.nn.Parameter(torch.zeros(()))
    def forward(self, x):
        import torch.nn.functional as F
        return F.one_hot((x[:, 0, 0, 0] * 255).round().long().clamp(0, self.k - 1), self.k).float() + 0 * self.p


def oracle_frames(classes, size=8):
    "uint8 NHWC images whose PixelOracle prediction is `classes[i]`."
    x = np.full((len(classes), size, size, 3), 200, np.uint8); x[:, 0, 0, 0] = classes
    return x
