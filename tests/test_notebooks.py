"The notebooks as a reader or papermill meets them: a python3 kernelspec, and outputs kept small."
import json
from pathlib import Path
import pytest

NBS = sorted((Path(__file__).resolve().parents[1]/'nbs').rglob('*.ipynb'))


@pytest.mark.parametrize('nb', NBS, ids=lambda p: p.name)
def test_notebook_names_the_python3_kernel(nb):
    "papermill and JupyterLab open every notebook without `-k python3`."
    ks = json.loads(nb.read_text(encoding='utf-8'))['metadata'].get('kernelspec', {})
    assert ks.get('name') == 'python3' and ks.get('language') == 'python', f"{nb.name}: kernelspec {ks}"


@pytest.mark.parametrize('nb', NBS, ids=lambda p: p.name)
def test_committed_outputs_stay_readable(nb):
    "No megabyte prints: each output (text or figure) under 400 kB (tools/run_notebooks.py cuts and recompresses)."
    for i, c in enumerate(json.loads(nb.read_text(encoding='utf-8'))['cells']):
        for o in c.get('outputs', []):
            n = len(json.dumps(o))
            assert n < 400_000, f"{nb.name} cell {i}: an output of {n:,} bytes"
