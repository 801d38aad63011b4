import os, pytest
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
