import json, os, signal, subprocess, sys, time
import pytest, torch
from augflat.train import load_checkpoint
from conftest import require_dataset

ARGS = ['--dataset', 'cifar10', '--model', 'convnet_small', '--epochs', '3', '--subset-per-class', '30',
        '--test-subset-per-class', '10', '--batch-size', '32', '--lr', '0.05', '--no-progress']


def run(args, env, **kw):
    return subprocess.run([sys.executable, '-m', 'augflat.cli', *args], env=env, capture_output=True, text=True, **kw)


def test_cli_train_writes_checkpoint_and_metrics(tmp_path, cli_env):
    require_dataset('cifar10')
    r = run(['train', *ARGS[:4], '--epochs', '1', '--subset-per-class', '20', '--test-subset-per-class', '5',
             '--batch-size', '32', '--no-progress', '--out', str(tmp_path/'run')], cli_env)
    assert r.returncode == 0, r.stderr
    assert (tmp_path/'run'/'checkpoint.pt').exists()
    rows = [json.loads(l) for l in (tmp_path/'run'/'metrics.jsonl').read_text().splitlines()]
    assert rows[-1]['epoch'] == 1 and 'test_acc' in rows[-1]
    summary = json.loads((tmp_path/'run'/'train.json').read_text())
    assert summary['meta']['dataset'] == 'cifar10' and summary['env']['torch'] == torch.__version__


def test_killed_mid_epoch_then_resumed_equals_uninterrupted(tmp_path, cli_env):
    require_dataset('cifar10')
    full = run(['train', *ARGS, '--out', str(tmp_path/'full')], cli_env)
    assert full.returncode == 0, full.stderr
    p = subprocess.Popen([sys.executable, '-m', 'augflat.cli', 'train', *ARGS, '--out', str(tmp_path/'killed')],
                         env=cli_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = tmp_path/'killed'/'metrics.jsonl'
    while not log.exists() and p.poll() is None: time.sleep(0.05)    # progress: epoch 1 is logged (however long it takes)
    time.sleep(0.3)                                    # into epoch 2
    p.send_signal(signal.SIGKILL); p.wait()
    done = len(log.read_text().splitlines())
    assert done < 3, "the run finished before it could be killed"
    again = run(['train', *ARGS, '--out', str(tmp_path/'killed')], cli_env)
    assert again.returncode == 1 and '--resume' in again.stderr
    res = run(['train', *ARGS, '--out', str(tmp_path/'killed'), '--resume'], cli_env)
    assert res.returncode == 0, res.stderr
    a, b = load_checkpoint(tmp_path/'full')[0].state_dict(), load_checkpoint(tmp_path/'killed')[0].state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_learns_above_chance_on_real_cifar10(tmp_path):
    require_dataset('cifar10')
    from augflat.data import load_dataset, subset_per_class
    from augflat.train import train, get_recipe
    tr = subset_per_class(load_dataset('cifar10', 'train'), 100, seed=0)            # 1,000 real images
    te = subset_per_class(load_dataset('cifar10', 'test'), 50, seed=0)
    res = train('convnet_small', tr, get_recipe('cifar', epochs=4, lr=0.05, batch_size=32), tmp_path/'r', test_set=te, progress=False)
    assert res['test_acc'] > 20, res


def test_bad_inputs(tmp_path, cli_env):
    r = run(['train', '--model', 'vgg99', '--subset-per-class', '2', '--epochs', '1', '--out', str(tmp_path/'x')], cli_env)
    assert r.returncode == 1 and 'valid names' in r.stderr
    r = run(['train', '--aug-param', 'oops', '--aug', 'augmix', '--subset-per-class', '2', '--out', str(tmp_path/'y')], cli_env)
    assert r.returncode == 1 and 'key=value' in r.stderr
    r = run(['train', '--jsd', '--subset-per-class', '2', '--out', str(tmp_path/'z')], cli_env)
    assert r.returncode == 1 and '--jsd needs' in r.stderr


def test_torchrun_ddp_two_processes_on_cpu(tmp_path, cli_env):
    "Multi-process (DDP, gloo on CPU) training through torchrun: one checkpoint, written by the first process."
    require_dataset('cifar10')
    torchrun = os.path.join(os.path.dirname(sys.executable), 'torchrun')
    r = subprocess.run([torchrun, '--standalone', '--nproc_per_node', '2', '-m', 'augflat.cli', 'train',
                        '--dataset', 'cifar10', '--model', 'convnet_small', '--epochs', '1', '--subset-per-class', '10',
                        '--test-subset-per-class', '5', '--batch-size', '32', '--no-progress', '--out', str(tmp_path/'ddp')],
                       env=dict(cli_env, OMP_NUM_THREADS='1'), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    summary = json.loads((tmp_path/'ddp'/'train.json').read_text())
    assert summary['meta']['world_size'] == 2 and summary['final']['epoch'] == 1
    model, meta = load_checkpoint(tmp_path/'ddp')
    assert meta['n_train'] == 100
