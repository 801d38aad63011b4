"""Execute the notebooks of nbs/ in place, keeping their outputs, so they read on GitHub and in JupyterLab.

Cells are chosen exactly as `nbdev_test` chooses them (skipped: `#| eval: false` and the flags of settings.ini's
`tst_flags`, e.g. `#| slow`, unless given with --flags), with IN_TEST set like nbdev_test. Each notebook runs in its own
process; outputs are made readable: progress bars are off, long text is cut, PNG figures are recompressed.
`make nbs` calls it on every notebook but nbs/paper (the paper notebooks are executed by `augflat reproduce`).
"""
from __future__ import annotations
import argparse, base64, io, os, subprocess, sys, time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

MAX_TEXT = 6_000          # characters kept of one text output: a printed check, not a dump
MAX_PNG_SIDE = 1_000      # pixels; larger figures are downscaled before recompression
MAX_PNG_BYTES = 250_000   # a picture grid of photos above this is stored with a 256-colour palette


def _shrink_png(data: str) -> str:
    from PIL import Image
    im = Image.open(io.BytesIO(base64.b64decode(data)))
    if max(im.size) > MAX_PNG_SIDE:
        s = MAX_PNG_SIDE / max(im.size); im = im.resize((round(im.width * s), round(im.height * s)), Image.LANCZOS)
    buf = io.BytesIO(); im.save(buf, format='PNG', optimize=True)
    if buf.tell() > MAX_PNG_BYTES:
        buf = io.BytesIO(); im.convert('RGB').quantize(256).save(buf, format='PNG', optimize=True)
    out = base64.b64encode(buf.getvalue()).decode()
    return out if len(out) < len(data) else data


def _cut(text):
    s = ''.join(text) if isinstance(text, list) else text
    return s if len(s) <= MAX_TEXT else s[:MAX_TEXT] + f"\n… [{len(s) - MAX_TEXT:,} more characters cut by tools/run_notebooks.py]\n"


def tidy_outputs(cell) -> None:
    "Readable outputs: long text cut, PNGs recompressed (in place)."
    for o in cell.get('outputs', []):
        if 'text' in o: o['text'] = _cut(o['text'])
        data = o.get('data', {})
        for k in ('text/plain', 'text/html', 'text/markdown'):
            if k in data: data[k] = _cut(data[k])
        if 'image/png' in data: data['image/png'] = _shrink_png(data['image/png'])


def execute_one(fn: Path, flags: set[str]) -> None:
    "Run one notebook (in this process) as nbdev_test would, and write it back with its outputs."
    from nbdev.process import NBProcessor
    from nbdev.frontmatter import FrontmatterProc
    from execnb.shell import CaptureShell
    from execnb.nbio import read_nb, write_nb
    os.environ['IN_TEST'] = '1'; os.environ['TQDM_DISABLE'] = '1'; os.environ.setdefault('MPLBACKEND', 'Agg')
    proc = NBProcessor(fn, procs=FrontmatterProc, process=True).nb   # for the directives only
    nb = read_nb(fn)                                                 # the untouched sources, written back
    skip = {}
    for c, pc in zip(nb.cells, proc.cells):
        d = getattr(pc, 'directives_', {}) or {}
        skip[id(c)] = (c.cell_type != 'code' or 'nbdev_export(' in c.source
                       or d.get('eval:', [''])[0].lower() == 'false' or bool(flags & d.keys()))
    for c in nb.cells:
        if c.cell_type == 'code': c.outputs, c.execution_count = [], None
    shell = CaptureShell(fn)
    os.chdir(fn.parent)
    shell.run_all(nb, exc_stop=True, preproc=lambda c: skip[id(c)])
    for c in nb.cells:
        if c.cell_type == 'code': tidy_outputs(c)
    write_nb(nb, fn)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('notebooks', nargs='*', help='notebooks (default: nbs/*.ipynb)')
    ap.add_argument('--flags', default='', help='flags of tst_flags to run anyway (e.g. slow)')
    ap.add_argument('--n-workers', type=int, default=2)
    ap.add_argument('--one', help=argparse.SUPPRESS)       # the child process: run this notebook
    a = ap.parse_args(argv)
    root = Path(__file__).resolve().parents[1]
    from configparser import ConfigParser
    cfg = ConfigParser(); cfg.read(root/'settings.ini')
    flags = set(cfg['DEFAULT'].get('tst_flags', '').split()) - set(a.flags.split())
    if a.one: execute_one(Path(a.one).resolve(), flags); return 0
    nbs = [Path(n).resolve() for n in a.notebooks] or sorted((root/'nbs').glob('*.ipynb'))

    def run(fn):
        t = time.perf_counter()
        r = subprocess.run([sys.executable, __file__, '--one', str(fn), '--flags', a.flags], capture_output=True, text=True)
        return fn, r, time.perf_counter() - t
    failed = []
    with ThreadPoolExecutor(a.n_workers) as ex:
        for fn, r, dt in ex.map(run, nbs):
            print(f"{'ok ' if r.returncode == 0 else 'FAILED'} {dt:6.1f}s  {fn.relative_to(root)}", flush=True)
            if r.returncode: failed.append(fn); print(r.stderr[-4000:], file=sys.stderr)
    return 1 if failed else 0


if __name__ == '__main__': sys.exit(main())
