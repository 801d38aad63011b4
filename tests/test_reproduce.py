"""End to end: `augflat reproduce --preset smoke` from nothing, killed midway, resumed, then rerun in seconds."""
import json, os, queue, signal, subprocess, sys, threading, time
from pathlib import Path
import pytest, torch
from conftest import require_dataset
from augflat.reproduce import (load_preset, plan, make_executor, _train_job, spec_for, NOTEBOOKS, render_report,
                               write_result, claim, ModelSpec, model_dir)

STALL_S = 900   # a test fails when a run it watches prints nothing for this long (it waits on progress, not a deadline)


def lines_of(proc):
    "A queue receiving `proc`'s output lines (None at the end), read by a thread so the test can wait on progress."
    q = queue.Queue()
    def pump():
        for line in proc.stdout: q.put(line)
        q.put(None)
    threading.Thread(target=pump, daemon=True).start()
    return q


def wait_for_line(q, predicate, seen):
    "Block until an output line satisfies `predicate` (True) or the output ends (False); fails on a stall."
    while True:
        try: line = q.get(timeout=STALL_S)
        except queue.Empty: pytest.fail(f"no output for {STALL_S} s:\n" + ''.join(seen))
        if line is None: return False
        seen.append(line)
        if predicate(line): return True


def reproduce_cmd(runs):
    return [sys.executable, '-m', 'augflat.cli', 'reproduce', '--preset', 'smoke', '--runs', str(runs)]


def test_smoke_pipeline_killed_resumed_and_skipped(tmp_path, cli_env):
    for d in ('cifar10', 'tinyimagenet', 'pacs'): require_dataset(d)
    runs = tmp_path/'runs'
    # 1. start, and kill it once its first model is trained and evaluated (its progress line), however long that takes
    p = subprocess.Popen(reproduce_cmd(runs), env=cli_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seen = []
    first_done = wait_for_line(lines_of(p), lambda l: l.lstrip().startswith('model ') and ': done' in l, seen)
    assert first_done and p.poll() is None, "the run ended before it could be killed:\n" + ''.join(seen)
    p.send_signal(signal.SIGKILL); p.wait()
    assert list((runs/'smoke'/'models').glob('*/train.json'))
    assert not (runs/'smoke'/'REPORT.md').exists()
    # 2. rerun: completes, reusing what was finished
    r = subprocess.run(reproduce_cmd(runs), env=cli_env, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    report = (runs/'smoke'/'REPORT.md').read_text()
    failures = json.loads((runs/'smoke'/'failures.json').read_text())
    assert failures == [], failures
    for name in NOTEBOOKS:
        res = json.loads((runs/'smoke'/'results'/f'{name}.json').read_text())
        assert res['rows'] and res['env']['torch'] and res['wall_s'] is not None, name
        assert res['title'] in report
        assert (runs/'smoke'/'notebooks'/NOTEBOOKS[name][0]).exists()       # executed copy under runs/
        assert f"(notebooks/{NOTEBOOKS[name][0]})" in report                  # linked from the report
    assert 'Claims checked' in report and ('held' in report)
    assert (runs/'smoke'/'figures'/'figure2_ecdf.png').exists()
    assert (runs/'smoke'/'tables'/'table3.csv').exists()
    # the paper notebooks in nbs/ stay clean (no outputs written into them)
    for nb in (Path(__file__).parents[1]/'nbs'/'paper').glob('*.ipynb'):
        assert all(not c.get('outputs') for c in json.loads(nb.read_text())['cells'] if c['cell_type'] == 'code'), nb
    # 3. a second run has nothing left to do: no model trained, no notebook executed
    r = subprocess.run(reproduce_cmd(runs), env=cli_env, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert '0 to train' in r.stdout and 'notebook ' not in r.stdout, r.stdout


def test_failures_are_isolated_and_reported(tmp_path):
    runs = tmp_path/'smoke'
    write_result(runs, 'table6', [dict(label='x', values=dict(erm=1.0))], ['erm'], 'Table 6: clean accuracy',
                 [claim('c', True, 'e')])
    (runs/'failures.json').write_text(json.dumps([dict(name='table3', status='failed', error='ValueError: boom')]))
    text = render_report(runs).read_text()
    assert 'Table 6: clean accuracy' in text and '`table3` failed: ValueError: boom' in text


def test_plan_trains_each_setup_once():
    p = plan(load_preset('cpu'))
    keys = [s.key for s in p['models']]
    assert len(keys) == len(set(keys))
    erm = spec_for(load_preset('cpu'), 'cifar', 'none')
    assert set(p['models'][erm]) == {'flatness', 'robustness'}            # Tables 2, 3 and 6 share one model


def test_bad_only_is_a_clear_error():
    from augflat.core import AugflatError
    with pytest.raises(AugflatError, match='choose from'):
        plan(load_preset('smoke'), ['table42'])


@pytest.mark.parametrize('kind', ['thread', 'dask'])
def test_external_executors_run_jobs(kind, tmp_path):
    pytest.importorskip('distributed') if kind == 'dask' else None
    ex = make_executor(2, kind)
    try:
        futs = [ex.submit(pow, 2, k) for k in range(4)]
        assert [f.result() for f in futs] == [1, 2, 4, 8]
        # a failing training job is reported, not raised
        bad = spec_for(load_preset('smoke'), 'cifar', 'no-such-aug')
        r = ex.submit(_train_job, str(tmp_path), bad, {}, 'cpu').result()
        assert r['status'] == 'failed' and 'no-such-aug' in r['error']
    finally:
        ex.shutdown()


def test_dask_scheduler_reruns_a_killed_workers_job_from_its_checkpoint(tmp_path):
    """`--executor dask --scheduler ADDRESS`: jobs go to an existing cluster (here a LocalCluster of two one-thread
    worker processes on loopback). The worker training a model is killed after its first epoch checkpoint; dask
    reschedules the job, which resumes from that checkpoint (epoch 1's record is kept, not redone). About 20 s."""
    pytest.importorskip('distributed')
    from distributed import LocalCluster
    require_dataset('cifar10')
    spec = ModelSpec('cifar10', 'convnet_small', 'none', 0, epochs=4, subset_per_class=100, batch_size=32, lr=0.05)
    ckpt = model_dir(tmp_path, spec)/'checkpoint.pt'
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host='127.0.0.1', dashboard_address=':0') as cluster:
        ex = make_executor(kind='dask', scheduler=cluster.scheduler_address)
        client = ex._client
        try:
            fut = ex.submit(_train_job, str(tmp_path), spec, {}, 'cpu')
            while not ckpt.exists():                        # progress: the first epoch's checkpoint
                assert not fut.done(), f"the job ended before its first checkpoint: {fut.result()}"
                time.sleep(0.02)
            first = torch.load(ckpt, weights_only=False)['history'][0]
            busy = [w for w, keys in client.processing().items() if keys]
            assert len(busy) == 1, client.processing()
            os.kill(client.run(os.getpid)[busy[0]], signal.SIGKILL)
            r = fut.result()
        finally:
            client.close()
    assert r['status'] == 'done', r
    history = [json.loads(l) for l in (model_dir(tmp_path, spec)/'metrics.jsonl').read_text().splitlines()]
    assert [h['epoch'] for h in history] == [1, 2, 3, 4]
    assert history[0] == first, "epoch 1 was trained again instead of resumed"


def test_reproduce_command_line_options(tmp_path):
    "--preset FILE, --set, --dry-run and --scheduler reach `reproduce`; bad keys and values are one-line errors."
    from augflat.cli import build_parser, main
    a = build_parser().parse_args(['reproduce', '--preset', 'paper', '--set', 'cifar.epochs=2', '--dry-run',
                                   '--executor', 'dask', '--scheduler', 'tcp://127.0.0.1:8786'])
    assert (a.preset, a.overrides, a.dry_run, a.executor, a.scheduler) == ('paper', ['cifar.epochs=2'], True, 'dask', 'tcp://127.0.0.1:8786')
    assert main(['reproduce', '--preset', 'smoke', '--set', 'cifar.epoch=2', '--runs', str(tmp_path)]) == 1
    assert main(['reproduce', '--preset', 'smoke', '--scheduler', 'tcp://127.0.0.1:8786', '--runs', str(tmp_path)]) == 1   # needs --executor dask
    f = tmp_path/'mine.json'; f.write_text(json.dumps({'extends': 'smoke', 'cifar': {'epochs': 'many'}}))
    assert main(['reproduce', '--preset', str(f), '--runs', str(tmp_path)]) == 1
    assert not list(tmp_path.glob('*/models')), "nothing ran"


def test_reproduce_command_line_errors_are_one_line(tmp_path, cli_env):
    r = subprocess.run([sys.executable, '-m', 'augflat.cli', 'reproduce', '--preset', 'smoke', '--set', 'cifar.epochs=two',
                        '--runs', str(tmp_path)], env=cli_env, capture_output=True, text=True)
    assert r.returncode == 1 and r.stderr.strip().count('\n') <= 1, r.stderr
    assert 'cifar.epochs expects a positive integer' in r.stderr


def test_gpu_preset_options_reach_the_trainer(tmp_path, monkeypatch):
    "The gpu preset asks for torch.compile; the trainer gets it on CUDA only (bf16, channels_last, resident data follow the device)."
    import augflat.train
    cfg = load_preset('gpu')
    spec = spec_for(cfg, 'cifar', 'augmix')
    assert spec.compile and spec.jsd and spec.subset_per_class is None and cfg['robustness']['n'] is None
    assert spec.key == spec_for(load_preset('gpu', ['train.compile=false']), 'cifar', 'augmix').key   # how, not what
    seen = {}
    monkeypatch.setattr(augflat.train, 'train', lambda *a, **kw: seen.update(kw))
    from augflat.data import ImageSet
    monkeypatch.setattr('augflat.reproduce.load_dataset',
                        lambda *a, **kw: ImageSet(torch.zeros(4, 3, 32, 32, dtype=torch.uint8), torch.arange(4) % 2, ['a', 'b']))
    from augflat.reproduce import ensure_model
    ensure_model(tmp_path, spec, 'cpu')
    assert seen['compile'] is False and seen['aug'] is not None and seen['loss_hook'] is not None


def test_cpu_bf16_setting_reaches_the_recipe(tmp_path, monkeypatch):
    "The preset's train.cpu_bf16 ('auto': only on a CPU with bf16 instructions) reaches the trainer's recipe; it is how, not what."
    import augflat.train
    from augflat.core import AugflatError
    cfg = load_preset('cpu')
    spec = spec_for(cfg, 'cifar', 'none')
    assert spec.cpu_bf16 == 'auto' and spec.key == spec_for(load_preset('cpu', ['train.cpu_bf16=false']), 'cifar', 'none').key
    with pytest.raises(AugflatError, match='train.cpu_bf16'): load_preset('cpu', ['train.cpu_bf16=sometimes'])
    seen = {}
    monkeypatch.setattr(augflat.train, 'train', lambda *a, **kw: seen.update(recipe=a[2]))
    from augflat.data import ImageSet
    monkeypatch.setattr('augflat.reproduce.load_dataset',
                        lambda *a, **kw: ImageSet(torch.zeros(4, 3, 32, 32, dtype=torch.uint8), torch.arange(4) % 2, ['a', 'b']))
    from augflat.reproduce import ensure_model
    ensure_model(tmp_path, spec, 'cpu')
    assert seen['recipe'].cpu_bf16 == 'auto' and seen['recipe'].epochs == cfg['cifar']['epochs']


def _threads_here():
    return torch.get_num_threads(), os.environ.get('OMP_NUM_THREADS')


def test_process_pool_jobs_share_the_cores(monkeypatch):
    "--jobs N: each worker takes cpu_count/N threads (and tells the kernels it starts), so jobs do not oversubscribe."
    from augflat.reproduce import worker_threads
    monkeypatch.delenv('OMP_NUM_THREADS', raising=False)
    want = max(1, (os.cpu_count() or 1) // 2)
    assert worker_threads(2) == want and worker_threads(10_000) == 1
    with make_executor(2) as ex:
        assert ex.submit(_threads_here).result() == (want, str(want))
    monkeypatch.setenv('OMP_NUM_THREADS', '3')
    assert worker_threads(2) == 3          # the user's choice wins
