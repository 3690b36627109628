"""Execute the notebooks and store them with their outputs.

Usage (from the repository root, with skrnn and the ``notebooks`` extra installed)::

    python notebooks/build.py              # every notebook, full settings, outputs saved
    python notebooks/build.py 04 06        # only the notebooks whose names start with these
    python notebooks/build.py --quick      # small-data run, as the tests do; nothing saved

Each notebook runs top to bottom in a fresh kernel whose working directory is a
temporary folder (removed afterwards), so nothing a notebook writes -- Optuna studies,
MLflow stores, models -- lands in the repository. The kernel is pinned to the
interpreter running this script (a private ``python3`` kernel spec first on
``JUPYTER_PATH``) and imports skrnn from this checkout first. ``tests/workflow/test_notebooks.py``
executes the notebooks through :func:`execute` with ``quick=True``.

The notebooks read ``SKRNN_NOTEBOOK_QUICK``: ``"1"`` selects small data and few epochs
(seconds per notebook); anything else the full settings whose outputs are committed.
"""

import argparse
import base64
import contextlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

NOTEBOOK_DIR = Path(__file__).resolve().parent
REPO_ROOT = NOTEBOOK_DIR.parent
CELL_TIMEOUT = 600  # seconds per cell
MAX_IMAGE_BYTES = 150_000  # a stored PNG figure larger than this is reported


def notebooks(prefixes=()):
    """The notebooks of ``notebooks/``, sorted; only those starting with ``prefixes``."""
    paths = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
    if prefixes:
        paths = [p for p in paths if p.name.startswith(tuple(prefixes))]
    return paths


@contextlib.contextmanager
def _kernel_environment(quick):
    """Environment variables the kernel inherits, restored on exit."""
    from ipykernel.kernelspec import make_ipkernel_cmd
    from jupyter_client.kernelspec import KernelSpecManager

    saved = dict(os.environ)
    with tempfile.TemporaryDirectory(prefix="skrnn-kernel-") as spec_root:
        spec_dir = Path(spec_root) / "kernels" / "python3"
        spec_dir.mkdir(parents=True)
        (spec_dir / "kernel.json").write_text(json.dumps({
            "argv": make_ipkernel_cmd(),
            "display_name": "Python 3 (skrnn notebooks)",
            "language": "python",
        }))
        try:
            os.environ["JUPYTER_PATH"] = os.pathsep.join(
                [spec_root, *filter(None, [saved.get("JUPYTER_PATH")])])
            # this checkout's skrnn, whatever is installed
            os.environ["PYTHONPATH"] = os.pathsep.join(
                [str(REPO_ROOT), *filter(None, [saved.get("PYTHONPATH")])])
            # no telemetry, no tracking server of the caller receiving the notebooks' runs,
            # figures through the inline backend as in Jupyter
            os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
            os.environ.pop("MLFLOW_TRACKING_URI", None)
            os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
            if quick:
                os.environ["SKRNN_NOTEBOOK_QUICK"] = "1"
            else:
                os.environ.pop("SKRNN_NOTEBOOK_QUICK", None)
            spec = KernelSpecManager().get_kernel_spec("python3")
            assert spec.argv[0] == sys.executable, spec.argv
            yield
        finally:
            os.environ.clear()
            os.environ.update(saved)


def execute(path, *, quick=False, workdir=None, timeout=CELL_TIMEOUT):
    """Run one notebook in a fresh kernel and return it with its outputs.

    Parameters
    ----------
    path : str or Path
        The ``.ipynb`` file.
    quick : bool, default=False
        Set ``SKRNN_NOTEBOOK_QUICK=1`` for the kernel (small data, few epochs).
    workdir : str or Path, default=None
        The kernel's working directory; None: a temporary folder, removed afterwards.
    timeout : int, default=CELL_TIMEOUT
        Seconds a cell may run.

    Returns
    -------
    nb : NotebookNode
        The executed notebook (a failing cell raises ``CellExecutionError``).
    seconds : float
        Wall time of the run, kernel start included.
    """
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    with contextlib.ExitStack() as stack:
        if workdir is None:
            workdir = stack.enter_context(tempfile.TemporaryDirectory(prefix="skrnn-nb-"))
        stack.enter_context(_kernel_environment(quick))
        client = NotebookClient(nb, kernel_name="python3", timeout=timeout,
                                record_timing=False,
                                resources={"metadata": {"path": str(workdir)}})
        start = time.perf_counter()
        client.execute()
        seconds = time.perf_counter() - start
    return nb, seconds


def images(nb):
    """(cell index, decoded size in bytes) of every PNG output."""
    return [(i, len(base64.b64decode(out["data"]["image/png"])))
            for i, cell in enumerate(nb.cells) if cell.cell_type == "code"
            for out in cell.get("outputs", []) if "image/png" in out.get("data", {})]


def main(argv=None):
    import nbformat

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("prefixes", nargs="*", help="only notebooks whose names start so")
    parser.add_argument("--quick", action="store_true",
                        help="small data (SKRNN_NOTEBOOK_QUICK=1); the notebooks are not saved")
    args = parser.parse_args(argv)
    paths = notebooks(args.prefixes)
    if not paths:
        parser.error(f"no notebook in {NOTEBOOK_DIR} starts with {args.prefixes}")
    for path in paths:
        nb, seconds = execute(path, quick=args.quick)
        pngs = images(nb)
        large = [(i, size) for i, size in pngs if size > MAX_IMAGE_BYTES]
        if not args.quick:
            nbformat.write(nb, path)
        print(f"{path.name}: {seconds:.1f} s, {len(pngs)} figure(s), "
              f"{path.stat().st_size / 1024:.0f} KiB on disk"
              + ("" if args.quick else ", saved"), flush=True)
        for i, size in large:
            print(f"  warning: cell {i} has a {size / 1024:.0f} KiB figure "
                  f"(limit {MAX_IMAGE_BYTES / 1024:.0f} KiB)", flush=True)


if __name__ == "__main__":
    main()
