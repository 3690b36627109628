"""Execute every notebook in notebooks/ and fail on any error.

Each notebook runs top to bottom in a fresh kernel whose working directory is a
temporary folder, so nothing it writes lands in the repository. The assertions
inside the notebooks (gradient checks, resumed study sizes, reloaded-model
predictions) are part of the test.

The kernel is pinned to the interpreter running pytest: a private ``python3``
kernel spec (argv from ``ipykernel.kernelspec.make_ipkernel_cmd``, i.e.
``sys.executable -m ipykernel_launcher``) is written to a temporary folder put first
on ``JUPYTER_PATH``, so it wins over any other ``python3`` spec. Neither a
user-level spec pointing at another Python nor a missing ``jupyter kernelspec
install`` can change which interpreter (and so which installed skrnn) executes the
notebooks. Needs ``nbformat``, ``nbclient`` and ``ipykernel`` (the ``test`` extra).
"""

import json
import sys
import time
from pathlib import Path

import nbformat
import pytest
from ipykernel.kernelspec import make_ipkernel_cmd
from jupyter_client.kernelspec import KernelSpecManager
from nbclient import NotebookClient

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
CELL_TIMEOUT = 300  # seconds per cell


def test_notebooks_are_found():
    assert len(NOTEBOOKS) >= 3, f"expected the walkthrough notebooks in {NOTEBOOK_DIR}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_stored_without_outputs(path):
    # outputs are produced by this test, not committed: the repository stays small
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    dirty = [i for i, cell in enumerate(nb.cells) if cell.cell_type == "code"
             and (cell.get("outputs") or cell.get("execution_count") is not None)]
    assert not dirty, f"{path.name}: clear the outputs of cells {dirty} before committing"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_executes(path, tmp_path, monkeypatch):
    # a kernel spec pinned to this interpreter, found first on JUPYTER_PATH
    jupyter_path = tmp_path / "jupyter"
    spec_dir = jupyter_path / "kernels" / "python3"
    spec_dir.mkdir(parents=True)
    (spec_dir / "kernel.json").write_text(json.dumps({
        "argv": make_ipkernel_cmd(),
        "display_name": "Python 3 (skrnn tests)",
        "language": "python",
    }))
    monkeypatch.setenv("JUPYTER_PATH", str(jupyter_path))
    assert KernelSpecManager().get_kernel_spec("python3").argv[0] == sys.executable

    # the kernel inherits this environment: no MLflow usage telemetry from test runs,
    # no tracking server of the caller receiving the notebooks' runs, and figures
    # rendered through the inline backend as in Jupyter
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    work = tmp_path / "work"
    work.mkdir()

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb, kernel_name="python3", timeout=CELL_TIMEOUT,
        resources={"metadata": {"path": str(work)}},  # the kernel's working directory
    )
    start = time.perf_counter()
    # starts and shuts down the kernel; a failing cell raises CellExecutionError,
    # whose message holds the cell's source and traceback
    client.execute()
    print(f"{path.name}: executed in {time.perf_counter() - start:.1f} s")

    errors = [out for cell in nb.cells if cell.cell_type == "code"
              for out in cell.get("outputs", []) if out.get("output_type") == "error"]
    assert not errors
