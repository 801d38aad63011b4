"""The paper preset proven on CPU before a GPU is lent: `augflat reproduce --preset paper --dry-run` runs every job
type of the paper preset at truncated sizes; `benchmarks/gpu/run.sh --cpu-check` runs the device script's steps."""
import json, os, subprocess, sys
from pathlib import Path
import pytest
from conftest import require_dataset
from augflat.reproduce import load_preset, plan, model_dir, config_hash, dataset_present, NOTEBOOKS, DRY_RUN
from augflat.robustness import PGD_PRESETS

REPO = Path(__file__).resolve().parents[1]


def test_paper_dry_run_runs_every_job_of_the_paper_preset(tmp_path, cli_env):
    """Every model of the paper preset's plan (one seed; Table 5's backbones with one augmentation) trains for 2
    batches with the paper's model, augmentation and JSD, and gets the paper's evaluation suites and attack settings;
    every notebook writes its result; DomainBed runs at 224 px from the 128 px PACS, recorded. Cost: the longest test,
    ~400 CPU-seconds (397 measured), about 3.5-5 min on 2 idle cores (README, dry-run section)."""
    for d in ('cifar10', 'tinyimagenet', 'pacs'): require_dataset(d)
    env = dict(cli_env, OMP_NUM_THREADS='1')      # two one-thread jobs use 2 cores better than one two-thread job
    r = subprocess.run([sys.executable, '-m', 'augflat.cli', 'reproduce', '--preset', 'paper', '--dry-run', '--jobs', '2',
                        '--runs', str(tmp_path)], env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    check_paper_dry_run(tmp_path/'paper-dry', r.stdout)


def check_paper_dry_run(runs: Path, stdout: str):
    "What a finished `reproduce --preset paper --dry-run` into `runs` must hold."
    assert json.loads((runs/'failures.json').read_text()) == [], stdout[-3000:]
    assert 'before any job runs' in stdout and ('cifar100 is absent here' in stdout or dataset_present('cifar100'))
    cfg, paper = load_preset(str(runs/'preset.json')), load_preset('paper')
    assert cfg['name'] == 'paper-dry' and cfg['seeds'] == paper['seeds'][:1]
    for spec, evals in plan(cfg)['models'].items():
        d = model_dir(runs, spec)
        meta, final = json.loads((d/'train.json').read_text())['meta'], json.loads((d/'train.json').read_text())['final']
        assert final['step'] == DRY_RUN['train_steps'] and meta['model'] == spec.model, spec.key
        assert meta['loss_hook'] == ('JSDLoss' if spec.jsd else None), spec.key
        for kind, settings in evals.items():
            res = json.loads((d/f"{kind}-{config_hash(settings)}.json").read_text())
            if kind == 'robustness':
                group = 'tiny' if spec.dataset == 'tinyimagenet' else 'cifar'
                assert res['settings']['suite'] == {**paper['robustness'], **paper[group].get('robustness', {})}['suite']
                family = 'tinyimagenet' if group == 'tiny' else 'cifar'
                assert {k: (v['eps'], v['steps']) for k, v in res['pgd'].items()} == \
                       {k: (v['eps'], v['steps']) for k, v in PGD_PRESETS[family].items()}
            else:
                assert res['settings']['metrics'] == paper['flatness']['metrics']
    assert {s.model for s in plan(cfg)['models']} == {s.model for s in plan(paper)['models']}
    assert {(s.aug, s.jsd) for s in plan(cfg)['models']} == {(s.aug, s.jsd) for s in plan(paper)['models']}
    for name in NOTEBOOKS: assert (runs/'results'/f'{name}.json').exists(), name
    db = json.loads(next((runs/'domainbed').glob('pacs-none/result.json')).read_text())
    assert db['config']['image_size'] == 224 and 'images stored at 128 px, upsampled (bilinear) to 224 px' in db['deviations']
    assert 'dry run of preset paper' in (runs/'REPORT.md').read_text()


def test_gpu_device_script_cpu_check(tmp_path, cli_env):
    """`benchmarks/gpu/run.sh --cpu-check`: the device script's four steps on the CPU at toy sizes (the CUDA parts
    skipped), step 4 limited to Table 1 of the gpu preset's dry run. About 2 CPU-minutes (119 s measured)."""
    for d in ('cifar10', 'tinyimagenet'): require_dataset(d)
    out = tmp_path/'gpu'
    env = dict(cli_env, OMP_NUM_THREADS='1')
    r = subprocess.run(['bash', str(REPO/'benchmarks'/'gpu'/'run.sh'), '--cpu-check', '--budget', '100000', '--only', 'table1',
                        '--out', str(out), '--python', sys.executable], env=env, capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert 'CUDA parts skipped' in r.stdout and json.loads((out/'env.json').read_text())['torch']
    trainer = json.loads((out/'trainer.json').read_text())['rows']
    assert {t['path'] for t in trainer} == {'resident', 'host'} and all(t['images_per_s'] > 0 for t in trainer)
    aug = json.loads((out/'augment.json').read_text())['rows']
    for size in (32, 64):
        assert {a['aug'] for a in aug if a['size'] == size and a['impl'].startswith('augflat')} == {'augmix', 'randaug', 'pixmix'}
        assert {a['aug'] for a in aug if a['size'] == size and a['impl'].startswith('torchvision')} == {'augmix', 'randaug'}
    assert json.loads((out/'estimate.json').read_text())['total_s'] > 0
    assert (out/'results'/'table1.json').exists() and 'gpu-dry' in (out/'REPORT.md').read_text()
