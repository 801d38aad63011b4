"""The command line as a new user meets it: results land in their run's folder, --resume checks the run, and every bad
input is one `augflat: error:` line (plus an optional hint), never a traceback.

Cost: 4.5 minutes measured on 2 shared, busy CPU cores (load ~7): two 1-epoch trainings on 20 CIFAR-10 images shared
by the module and ~25 short CLI subprocesses, most of whose time is interpreter and torch start-up."""
import argparse, contextlib, errno, io, json, os, shutil, subprocess, sys
import pytest, torch
from conftest import require_dataset

TINY = ['--dataset', 'cifar10', '--model', 'convnet_small', '--subset-per-class', '2', '--test-subset-per-class', '1',
        '--batch-size', '32', '--no-progress']


def run(args, env):
    return subprocess.run([sys.executable, '-m', 'augflat.cli', *map(str, args)], env=env, capture_output=True, text=True)


def assert_one_line_error(r, code=None, contains=()):
    "Exit code 1 or 2, no traceback, exactly one `augflat: error:` line, only hint lines after it."
    assert r.returncode in ((code,) if code else (1, 2)), (r.returncode, r.stdout[-2000:], r.stderr[-2000:])
    assert 'Traceback' not in r.stderr, r.stderr
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    errors = [i for i, l in enumerate(lines) if l.startswith('augflat: error: ')]
    assert len(errors) == 1, r.stderr
    assert all(l.startswith('  hint: ') for l in lines[errors[0] + 1:]), r.stderr
    message = '\n'.join(lines[errors[0]:])
    for c in ([contains] if isinstance(contains, str) else contains): assert c in message, message
    return message


@pytest.fixture(scope='module')
def env():
    e = dict(os.environ, PYTHONUNBUFFERED='1', OMP_NUM_THREADS='1')
    e.setdefault('AUGFLAT_CACHE', os.path.expanduser('~/.cache/augflat'))
    return e


@pytest.fixture(scope='module')
def runs(tmp_path_factory, env):
    "Two finished 1-epoch runs, runs/a and runs/b, of the README's form."
    require_dataset('cifar10')
    root = tmp_path_factory.mktemp('cli') / 'runs'
    for name, seed in (('a', 0), ('b', 1)):
        r = run(['train', *TINY, '--epochs', '1', '--seed', seed, '--out', root / name], env)
        assert r.returncode == 0, r.stderr
    return root


# --- 1. every result of a run is written inside that run's folder --------------------------------------------------

def test_evaluate_and_flatness_write_inside_the_run_folder_for_both_path_forms(runs, env):
    a, b = runs / 'a', runs / 'b'
    r = run(['evaluate', a, '--suite', 'clean', '--n', '20'], env)                    # the README's form
    assert r.returncode == 0, r.stderr
    r = run(['evaluate', b / 'checkpoint.pt', '--suite', 'clean', '--n', '20'], env)  # the file form
    assert r.returncode == 0, r.stderr
    assert not (runs / 'robustness.json').exists(), "a run's result was written into the parent folder"
    for d in (a, b):                         # two runs evaluated in a row: each keeps its own result
        assert json.loads((d / 'robustness.json').read_text())['config']['checkpoint'].startswith(str(d))
    for form in (a, b / 'checkpoint.pt'):
        r = run(['flatness', form, '--metrics', 'lpf', '--n-train', '20', '--lpf-samples', '2', '--max-samples', '4'], env)
        assert r.returncode == 0, r.stderr
    assert not (runs / 'flatness_seed0.json').exists(), "a run's result was written into the parent folder"
    for d in (a, b):
        assert json.loads((d / 'flatness_seed0.json').read_text())['config']['checkpoint'].startswith(str(d))


# --- 2. --resume compares the whole run configuration ----------------------------------------------------------------

def test_resume_refuses_another_configuration_and_names_the_keys(runs, env):
    a = runs / 'a'
    before = (a / 'train.json').read_text(), (a / 'checkpoint.pt').read_bytes()
    for change, key in ((['--aug', 'randaug'], 'aug_name'), (['--seed', '5'], 'seed'),
                        (['--subset-per-class', '3'], 'subset_per_class')):    # recipe changes: nbs/40_train.ipynb
        args = [*TINY, '--epochs', '1', '--seed', '0', '--out', a, '--resume']
        for i in range(0, len(change), 2):                       # the changed option replaces its default
            if change[i] in args: args[args.index(change[i]) + 1] = change[i + 1]
            else: args += change[i:i + 2]
        msg = assert_one_line_error(run(['train', *args], env), 1, ['another configuration', key])
        assert msg.count('\n') <= 1
    assert ((a / 'train.json').read_text(), (a / 'checkpoint.pt').read_bytes()) == before   # nothing relabelled
    r = run(['train', *TINY, '--epochs', '1', '--seed', '0', '--out', a, '--resume'], env)  # the same run resumes
    assert r.returncode == 0, r.stderr


def test_resume_with_other_augmentation_parameters_is_refused(runs, tmp_path):
    "In-process (cheaper than two more CLI trainings): RandAugment's num_ops is part of the run's configuration."
    from augflat.core import AugflatError
    from augflat.data import load_dataset, subset_per_class
    from augflat.train import build_augmentation, get_recipe, train
    data = subset_per_class(load_dataset('cifar10', 'train'), 2, seed=0)
    recipe = get_recipe('cifar', epochs=1, batch_size=32)
    train('convnet_small', data, recipe, tmp_path, aug=build_augmentation('randaug', dict(num_ops=1))[0], progress=False)
    with pytest.raises(AugflatError, match=r'aug_params.num_ops \(1 -> 2\)'):
        train('convnet_small', data, recipe, tmp_path, aug=build_augmentation('randaug', dict(num_ops=2))[0],
              progress=False, resume=True)


# --- 3. validation at the edge ---------------------------------------------------------------------------------------

@pytest.mark.parametrize('args, contains', [
    (['train', '--epochs', '0', '--out', 'OUT'], 'argument --epochs: expected an integer >= 1'),
    (['train', '--epochs', '-1', '--out', 'OUT'], 'argument --epochs: expected an integer >= 1'),
    (['train', '--batch-size', '0', '--out', 'OUT'], 'argument --batch-size'),
    (['train', '--lr', 'nan', '--out', 'OUT'], 'argument --lr'),
    (['reproduce', '--jobs', '0'], 'argument --jobs: expected an integer >= 1'),
    (['density', '--gammas', 'abc', '--out', 'OUT'], "argument --gammas: expected comma-separated positive numbers, got 'abc'"),
    (['corrupt', '--severities', '1,9', '--out', 'OUT'], 'argument --severities'),
])
def test_bad_arguments_are_one_line_errors(args, contains, tmp_path, env):
    out = tmp_path / 'never'
    assert_one_line_error(run([out if a == 'OUT' else a for a in args], env), 2, contains)
    assert not out.exists()


def test_augmentation_parameters_without_an_augmentation(tmp_path, env):
    require_dataset('cifar10')
    assert_one_line_error(run(['train', *TINY, '--aug-param', 'severity=3', '--out', tmp_path / 'x'], env), 1,
                          'given without an augmentation')


def test_a_failed_start_leaves_no_empty_out_folder(tmp_path, env):
    require_dataset('cifar10')
    out = tmp_path / 'new' / 'run'
    assert_one_line_error(run(['train', *TINY, '--model', 'vgg99', '--epochs', '1', '--out', out], env), 1, 'unknown model')
    assert not (tmp_path / 'new').exists()


# --- 4. one-line errors instead of tracebacks -------------------------------------------------------------------------

def test_checkpoint_naming_another_architecture(runs, tmp_path, env):
    ck = torch.load(runs / 'a' / 'checkpoint.pt', weights_only=False)
    ck['meta']['model'] = 'wrn16_2'
    torch.save(ck, tmp_path / 'checkpoint.pt')
    msg = assert_one_line_error(run(['evaluate', tmp_path, '--suite', 'clean', '--n', '10'], env), 1,
                                ["do not fit the 'wrn16_2'", 'missing'])
    assert len(msg) < 400


@pytest.fixture
def read_only_dir(tmp_path):
    "A folder nobody may write to: a read-only tmpfs when root (root ignores file modes), else mode 0555."
    d = tmp_path / 'ro'; d.mkdir()
    if os.geteuid() != 0:
        d.chmod(0o555); yield d; d.chmod(0o755); return
    if shutil.which('mount') is None or subprocess.run(['mount', '-t', 'tmpfs', '-o', 'ro,size=64k', 'tmpfs', str(d)],
                                                       capture_output=True).returncode != 0:
        pytest.skip('running as root and cannot mount a read-only tmpfs')
    try: yield d
    finally: subprocess.run(['umount', str(d)], check=True)


def test_read_only_out(runs, read_only_dir, env):
    assert_one_line_error(run(['train', *TINY, '--epochs', '1', '--out', read_only_dir / 'run'], env), 1,
                          f'cannot write to {read_only_dir}')
    # evaluate checks before it computes (seconds, not the whole evaluation, are lost)
    assert_one_line_error(run(['evaluate', runs / 'a', '--suite', 'clean', '--n', '10',
                               '--out', read_only_dir / 'robustness.json'], env), 1, f'cannot write to {read_only_dir}')


def test_evaluate_keeps_its_result_when_the_final_write_fails(runs, monkeypatch, capsys):
    "The folder turns read-only while the evaluation runs: the computed result is kept elsewhere and named."
    import augflat.core as core
    from augflat.cli import main
    real_replace = os.replace
    def replace(src, dst):
        if str(dst).endswith('robustness-ro.json'): raise OSError(errno.EROFS, 'Read-only file system')
        return real_replace(src, dst)
    monkeypatch.setattr(core.os, 'replace', replace)
    assert main(['evaluate', str(runs / 'b'), '--suite', 'clean', '--n', '10', '--no-progress',
                 '--out', str(runs / 'b' / 'robustness-ro.json')]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"augflat: error: cannot write {runs / 'b' / 'robustness-ro.json'}: Read-only file system")
    kept = err.split('the result is kept at ')[1].split(': move it')[0]
    try: assert json.loads(open(kept).read())['metrics']['clean_n'] == 10
    finally: os.remove(kept)
    assert not (runs / 'b' / 'robustness-ro.json').exists()


def _assert_kept_after_full_disk(out, err):
    assert 'Traceback' not in err
    first = [l for l in err.splitlines() if l.startswith('augflat: error:')]
    assert first == [f"augflat: error: disk full while writing {out / 'checkpoint.pt'}"], err
    assert f"the last good checkpoint (end of epoch 1) is kept at {out / 'checkpoint.pt'}" in err, err
    from augflat.train import load_checkpoint
    ck = torch.load(out / 'checkpoint.pt', weights_only=False)
    assert ck['epoch'] == 1 and load_checkpoint(out)[1]['model'] == 'convnet_small'
    assert not [p for p in out.iterdir() if p.name.endswith('.tmp')]


def test_full_disk_during_checkpoint_save_names_the_kept_checkpoint(tmp_path, monkeypatch, capsys):
    "Simulated in-process: the second checkpoint save fails the way torch fails on a full disk."
    require_dataset('cifar10')
    import augflat.core as core
    from augflat.cli import main
    real_save, calls = torch.save, []
    def save(obj, f, *a, **kw):
        if 'checkpoint.pt' in str(f): calls.append(f)     # other saves (a decoded-data cache) pass through
        if len(calls) == 2 and 'checkpoint.pt' in str(f):
            open(f, 'wb').write(b'partial')
            raise RuntimeError('[enforce fail at inline_container.cc:672] . unexpected pos 576 vs 534')
        return real_save(obj, f, *a, **kw)
    monkeypatch.setattr(torch, 'save', save)
    monkeypatch.setattr(core, '_free_bytes', lambda folder: 0)      # what a full disk reports
    out = tmp_path / 'run'
    assert main(['train', *TINY, '--epochs', '2', '--out', str(out)]) == 1
    _assert_kept_after_full_disk(out, capsys.readouterr().err)


def test_full_disk_on_a_real_tiny_filesystem(tmp_path, env):
    "A 700 KiB tmpfs holds one checkpoint of the small model (~480 KB) but not a second beside it."
    require_dataset('cifar10')
    d = tmp_path / 'tiny'; d.mkdir()
    if os.geteuid() != 0 or shutil.which('mount') is None or subprocess.run(
            ['mount', '-t', 'tmpfs', '-o', 'size=700k', 'tmpfs', str(d)], capture_output=True).returncode != 0:
        pytest.skip('needs root and tmpfs to make a small file system')
    try:
        r = run(['train', *TINY, '--epochs', '2', '--out', d / 'run'], env)
        assert r.returncode == 1, r.stderr
        _assert_kept_after_full_disk(d / 'run', r.stderr)
    finally: subprocess.run(['umount', str(d)], check=True)


# --- 5. one name per concept, defaults in --help, augflat augs, 0644 ---------------------------------------------------

def _subcommands(parser, prefix=''):
    for a in parser._actions:
        if isinstance(a, argparse._SubParsersAction):
            for name, p in a.choices.items():
                yield f'{prefix}{name}', p
                yield from _subcommands(p, f'{prefix}{name} ')


def test_every_option_has_help_and_shows_its_default():
    from augflat.cli import build_parser, HelpFormatter
    fmt = HelpFormatter('augflat')
    for name, p in _subcommands(build_parser()):
        assert isinstance(p.formatter_class, type) and issubclass(p.formatter_class, argparse.ArgumentDefaultsHelpFormatter), name
        for a in p._actions:
            if a.help == argparse.SUPPRESS or isinstance(a, (argparse._HelpAction, argparse._SubParsersAction)): continue
            assert a.help, f"augflat {name} {a.option_strings or a.dest}: no help"
            if a.option_strings and a.default not in (None, False, [], argparse.SUPPRESS):
                h = fmt._get_help_string(a)
                assert '%(default)' in h or 'default' in h, f"augflat {name} {a.option_strings}: default not shown"


def test_one_name_per_concept_and_old_spellings_still_work(capsys):
    from augflat.cli import build_parser
    parser = build_parser()
    for name, p in _subcommands(parser):
        visible = {o for a in p._actions if a.help != argparse.SUPPRESS for o in a.option_strings}
        assert not visible & {'--out-dir', '--quiet'}, (name, visible & {'--out-dir', '--quiet'})
    assert parser.parse_args(['domainbed', '--out-dir', 'x']).out == 'x'
    assert parser.parse_args(['flatness', 'r', '--quiet']).no_progress is True
    assert parser.parse_args(['density', '--quiet']).no_progress is True
    assert capsys.readouterr().err.count('is deprecated, use') == 3


def test_augs_lists_every_registered_augmentation(env):
    from augflat.augment.registry import list_augmentations
    r = run(['augs'], env)
    assert r.returncode == 0, r.stderr
    names = [l.split()[0] for l in r.stdout.splitlines()]
    assert names[:-1] == list_augmentations() and names[-1] == 'module.path:callable'


def test_run_files_are_written_0644(runs):
    umask = os.umask(0); os.umask(umask)
    for f in ('checkpoint.pt', 'train.json', 'metrics.jsonl'):
        assert (runs / 'a' / f).stat().st_mode & 0o777 == 0o666 & ~umask, f
