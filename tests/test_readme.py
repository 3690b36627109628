"""The README's Python examples run as written."""

import re
import warnings
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


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
