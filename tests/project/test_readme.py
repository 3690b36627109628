"""The README's Python examples run as written."""

import re
import warnings
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_python_blocks_run(capsys):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert blocks, "the README has no Python examples"
    namespace = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning of the short demo fits
        for block in blocks:  # later blocks build on earlier ones, as a reader's session
            exec(compile(block, str(README), "exec"), namespace)
    out = capsys.readouterr().out
    score = float(re.search(r"R² on the last 100 windows: (-?[\d.]+)", out).group(1))
    assert score > 0.8


def test_readme_paths_exist():
    # a path the README cites must be in the repository (a committed benchmark
    # output once was not: an ignore rule caught it)
    root = README.parent
    text = README.read_text() + (root / "benchmarks" / "README.md").read_text()
    cited = set(re.findall(r"`((?:skrnn|benchmarks|tests|pipelines|notebooks|\.ci)/[^`\s]*)`",
                           text))
    assert {"benchmarks/bench_training.py", "benchmarks/README.md"} <= cited
    missing = sorted(p for p in cited if not (root / p).exists())
    assert not missing, f"the README cites paths that are not in the repository: {missing}"
