"""DomainBed protocol on real PACS (skipped only when PACS is absent): smoke run, resume, model selection,
the studied augmentation replacing the colour transform, and bad inputs."""
import json
from pathlib import Path
import numpy as np
import pytest
import torch

from augflat.core import AugflatError
from augflat.domainbed import (run_domainbed, train_one, domain_splits, color_jitter, random_resized_crop_flip,
                               format_result)


@pytest.fixture(scope='module')
def pacs_small():
    from augflat.data import load_dataset, locate
    try: locate('pacs')
    except AugflatError: pytest.skip("PACS not found in any data root (../shared/data/pacs.zip)")
    ds = load_dataset('pacs')
    # a class-and-domain-stratified quarter keeps the test fast; 32 px like the smoke preset
    keep = torch.randperm(len(ds), generator=torch.Generator().manual_seed(0))[:2500].sort().values
    ds = ds[keep]
    x = torch.nn.functional.interpolate(ds.x.float(), size=(32, 32), mode='bilinear', antialias=True).round().to(torch.uint8)
    return type(ds)(x, ds.y, ds.classes, name='pacs', domains=ds.domains, domain_names=ds.domain_names)


def test_smoke_resume_and_selection(pacs_small, tmp_path):
    kw = dict(steps=6, trials=1, test_envs=['sketch', 0], backbone='convnet_small', checkpoint_freq=3,
              out_dir=tmp_path, progress=False, data=pacs_small, device='cpu')
    res = run_domainbed('pacs', **kw)
    m = res['metrics']
    assert sorted(m['per_domain']) == ['art_painting', 'sketch']
    assert all(0 <= v <= 100 for v in m['per_domain'].values())
    assert m['mean'] == pytest.approx(np.mean(list(m['per_domain'].values())))
    assert any('from scratch' in d for d in res['deviations']) and any('6 steps' in d for d in res['deviations'])
    saved = json.loads((tmp_path/'result.json').read_text())
    assert saved['metrics']['per_domain'] == m['per_domain']
    runs = [json.loads(l) for l in (tmp_path/'runs.jsonl').read_text().splitlines()]
    assert len(runs) == 2
    for r in runs:   # training-domain validation: the selected record has the highest validation accuracy
        assert [h['step'] for h in r['history']] == [3, 6]
        assert r['selected']['val_acc'] == max(h['val_acc'] for h in r['history'])
        assert len(r['selected']['val_accs']) == 3 and r['test_env'] not in r['selected']['val_accs']
    print(format_result(res))
    # resume: everything is read back, nothing retrained
    again = run_domainbed('pacs', **kw)
    assert again['metrics']['per_domain'] == m['per_domain']
    assert len((tmp_path/'runs.jsonl').read_text().splitlines()) == 2


def test_studied_augmentation_replaces_colour(pacs_small):
    calls = []
    def mark(x, generator=None):
        calls.append(x.shape); return 255 - x
    r = train_one(pacs_small, 1, 0, aug=mark, steps=2, backbone='convnet_small', checkpoint_freq=2, device='cpu')
    assert len(calls) == 2 and calls[0][0] == 3 * 32     # 32 per source domain, 3 source domains
    assert r['selected']['step'] == 2


def test_transform_statistics():
    g = torch.Generator().manual_seed(0)
    x = torch.full((256, 3, 8, 8), 100, dtype=torch.uint8)
    b = color_jitter(x, 0.3, 0, 0, 0, gray_p=0, generator=g).float().mean((1, 2, 3)) / 100
    assert 0.69 <= b.min() and b.max() <= 1.31 and b.std() > 0.1      # brightness factors ~ U(0.7, 1.3)
    xr = torch.randint(0, 256, (512, 3, 8, 8), dtype=torch.uint8, generator=g)
    gray = color_jitter(xr, 0, 0, 0, 0, gray_p=0.1, generator=g)
    frac = (gray.float().std(1).amax((1, 2)) < 1).float().mean()
    assert 0.05 < frac < 0.16                                          # RandomGrayscale p=0.1
    c = random_resized_crop_flip(xr, 8, generator=g)
    assert c.shape == xr.shape and c.dtype == torch.uint8


def test_splits_and_bad_inputs(pacs_small):
    sp = domain_splits(pacs_small.domains, 0.2, seed=1)
    for d, (i, o) in sp.items():
        n = int((pacs_small.domains == d).sum())
        assert len(o) == int(n * 0.2) and len(i) + len(o) == n
    with pytest.raises(AugflatError, match="unknown test domains"):
        run_domainbed(data=pacs_small, test_envs=[7], steps=1, trials=1)
    nodom = type(pacs_small)(pacs_small.x[:10], pacs_small.y[:10], pacs_small.classes, name='flat')
    with pytest.raises(AugflatError, match="has no domains"):
        run_domainbed(data=nodom, steps=1, trials=1)


def test_larger_image_size_upsamples_with_a_deviation(pacs_small, tmp_path):
    "The paper preset asks 224 px of a PACS stored smaller: it runs, upsampled, and says so (about 2 s)."
    res = run_domainbed(data=pacs_small, image_size=64, steps=1, trials=1, test_envs=[0], backbone='convnet_small',
                        max_per_domain=16, batch_size=2, out_dir=tmp_path, progress=False, device='cpu')
    assert "images stored at 32 px, upsampled (bilinear) to 64 px" in res['deviations']
    assert res['config']['image_size'] == 64 and 0 <= res['metrics']['mean'] <= 100
