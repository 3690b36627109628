"""Table-driven CLI errors: each bad input fails with exit status 2 and one line naming
the problem, before anything is fitted, and leaves the previous run intact.

Every case starts from a copy of one finished run (made once per module), changes the
experiment file, the command line, the data or the files, runs ``skrnn`` in-process
and checks: exit status 2, stderr is exactly one line ``Error: ...`` containing the
expected words, no traceback, the run folder holds the same files byte for byte, and
no staging or moved-aside folder is left behind.
"""

import hashlib
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from experiments import LAST_VALUE, experiment

from skrnn.cli import main

FAST = experiment("fast", LAST_VALUE + """
[[models]]
name = "ridge"
kind = "ridge"
params = {{ alpha = 1.0 }}
[models.search]
n_trials = 2
space = {{ alpha = [0.1, 10.0, "log"] }}
""", periods=120, test_periods=20, lags=3,
                  extra='[tuning]\nstorage = "sqlite:///{{output}}/optuna.db"\n\n')


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def snapshot(folder):
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(Path(folder).rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """One finished run of FAST and a clean history CSV, shared by every case."""
    base = tmp_path_factory.mktemp("finished")
    out = base / "run"
    (base / "fast.toml").write_text(FAST.format(out=out.as_posix()))
    result = invoke("run", base / "fast.toml", "--quiet")
    assert result.exit_code == 0, result.output
    from skrnn.datasets import make_count_panel

    make_count_panel(n_groups=2, periods=120, start="2020-01-01", random_state=5).to_csv(
        base / "panel.csv", index=False)
    return base


@pytest.fixture()
def case(finished, tmp_path):
    """A private copy: tmp/run (the finished run), tmp/fast.toml, tmp/panel.csv."""
    out = tmp_path / "run"
    shutil.copytree(finished / "run", out)
    (tmp_path / "fast.toml").write_text(FAST.format(out=out.as_posix()))
    shutil.copy(finished / "panel.csv", tmp_path / "panel.csv")
    return tmp_path


def _toml(old, new):
    def edit(d):
        path = d / "fast.toml"
        text = path.read_text()
        assert old in text, old
        path.write_text(text.replace(old, new, 1))
        return ["run", path, "--quiet"]
    return edit


def _append(text):
    def edit(d):
        path = d / "fast.toml"
        path.write_text(path.read_text() + text)
        return ["run", path, "--quiet"]
    return edit


def _args(*extra):
    def edit(d):
        return ["run", d / "fast.toml", "--quiet", *[str(e).format(d=d) for e in extra]]
    return edit


def _csv(change, *extra):
    """Run on --data panel.csv after ``change(frame) -> frame or text``."""
    def edit(d):
        frame = pd.read_csv(d / "panel.csv", dtype={"district": str})
        changed = change(frame)
        if isinstance(changed, str):
            (d / "data.csv").write_text(changed)
        else:
            changed.to_csv(d / "data.csv", index=False)
        return ["run", d / "fast.toml", "--quiet", "--data", d / "data.csv", *extra]
    return edit


def _predict(change=None, model="ridge", *extra):
    def edit(d):
        frame = pd.read_csv(d / "panel.csv", dtype={"district": str})
        changed = frame if change is None else change(frame)
        if isinstance(changed, str):
            (d / "data.csv").write_text(changed)
        else:
            changed.to_csv(d / "data.csv", index=False)
        return ["predict", "--model", d / "run" / "models" / f"{model}.skops",
                "--data", d / "data.csv", "--output", d / "f.csv", *extra]
    return edit


def _set(frame, row, col, value):
    frame = frame.astype({col: object})
    frame.loc[row, col] = value
    return frame


def _rewrite_manifest(d):
    """After a deliberate change to a model file: a manifest that matches it again."""
    import json

    path = d / "run" / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["files"] = {k: (d / "run" / k).stat().st_size for k in manifest["files"]}
    path.write_text(json.dumps(manifest))


def _model_file(write):
    def edit(d):
        write(d / "run" / "models" / "ridge.skops")
        _rewrite_manifest(d)
        return _predict()(d)
    return edit


def _truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _other_object(path):
    from sklearn.preprocessing import StandardScaler

    from skrnn import persistence

    persistence.save(StandardScaler().fit(np.ones((3, 1))), path)


def _garble(path):
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as z:
        info = z.infolist()[-1]
    start = info.header_offset + 30 + len(info.filename)
    data[start:start + 40] = b"\x00" * 40
    path.write_bytes(bytes(data))


def _strip_manifest(d):
    (d / "run" / "manifest.json").unlink()


def _show(prepare=None):
    def edit(d):
        if prepare is not None:
            prepare(d)
        return ["show", d / "run"]
    return edit


def _append_to_results(d):
    with open(d / "run" / "results.csv", "a") as f:
        f.write("x\n")


def _foreign_output(d):
    (d / "mine").mkdir()
    (d / "mine" / "thesis.tex").write_text("precious")
    return ["run", d / "fast.toml", "--quiet", "--output", d / "mine"]


def _file_as_parent(d):
    (d / "afile").write_text("x")
    return ["run", d / "fast.toml", "--quiet", "--output", d / "afile" / "out"]


def _gap(frame):
    return frame.drop(index=[10])


def _duplicate(frame):
    return pd.concat([frame, frame.iloc[[7]]])


def _irregular_last(frame):
    frame = frame.copy()
    frame["date"] = pd.to_datetime(frame["date"]).dt.strftime("%Y-%m-%d %H:%M")
    last = frame.index[frame["district"] == frame["district"].iloc[0]][-1]
    frame.loc[last, "date"] = "2020-04-29 12:00"
    return frame


def _short_history(frame):
    return frame.groupby("district").head(4)


def _semicolons(frame):
    return frame.to_csv(index=False, sep=";")


def _covariate_text(d):
    """A known-future column with a word in it."""
    path = d / "fast.toml"
    path.write_text(path.read_text().replace("lags = 3", 'lags = 3\nknown_future = ["temp"]'))
    frame = pd.read_csv(d / "panel.csv", dtype={"district": str})
    frame["temp"] = 1.0
    frame = _set(frame, 9, "temp", "warm")
    frame.to_csv(d / "data.csv", index=False)
    return ["run", path, "--quiet", "--data", d / "data.csv"]


def _baseline_name_taken(d):
    path = d / "fast.toml"
    text = path.read_text().replace("baselines = false", "baselines = true")
    path.write_text(text.replace('name = "ridge"', 'name = "hgb"'))
    return ["run", path, "--quiet"]


CASES = [
    # -- the experiment file ---------------------------------------------------------------
    ("unknown-key", _append("\n[extra]\nkey = 1\n"), "extra: unknown key"),
    ("wrong-type", _toml("test_periods = 20", 'test_periods = "twenty"'),
     "split.test_periods"),
    ("not-toml", _append("\n[[models]\n"), "not valid TOML"),
    ("missing-data-file", _toml('source = "generated"', 'source = "csv"\npath = "nope.csv"'),
     "data file not found"),
    ("holdout-too-long", _toml("test_periods = 20", "test_periods = 5000"),
     "leaves no training dates"),
    ("both-holdouts", _toml("test_periods = 20", 'test_periods = 20\ntest_start = "2020-03-01"'),
     "exactly one of test_start or test_periods"),
    ("bad-test-start", _toml("test_periods = 20", 'test_start = "someday"'),
     "is not a date"),
    ("validation-fraction", _toml("test_periods = 20", "test_periods = 20\n"
                                  "validation_fraction = 1.5"), "split.validation_fraction"),
    ("lags-over-max", _toml("lags = 3", "lags = 9"), "exceeds features.max_lags"),
    ("unknown-kind", _toml('kind = "ridge"', 'kind = "transformer"'), "models.1.kind"),
    ("duplicate-names", _toml('name = "ridge"', 'name = "last_value"'), "must be unique"),
    ("name-escapes", _toml('name = "ridge"', 'name = "../../x"'), "cannot name a file"),
    ("name-separator", _toml('name = "ridge"', 'name = "a/b"'), "cannot name a file"),
    ("name-backslash", _toml('name = "ridge"', 'name = "a\\\\b"'), "cannot name a file"),
    ("name-hidden", _toml('name = "ridge"', 'name = ".hidden"'), "cannot name a file"),
    ("experiment-name-escapes", _toml('name = "fast"', 'name = "../fast"'),
     "experiment name '../fast' cannot name a file"),
    ("unknown-param", _toml("alpha = 1.0 }", "alphaa = 1.0 }"),
     "params.alphaa is not a parameter of Ridge"),
    ("bad-param-value", _toml("alpha = 1.0 }", "alpha = -1.0 }"),
     "'alpha' parameter of Ridge"),
    ("bad-recurrent-param", _append('\n[[models]]\nname = "g"\nkind = "gru"\n'
                                    "params = { units = -3 }\n"),
     "'units' parameter of GRURegressor"),
    ("baseline-search", _toml('kind = "last_value"', 'kind = "last_value"\n'
                              "[models.search]\nn_trials = 2"), "a baseline has nothing to tune"),
    ("zero-trials", _toml("n_trials = 2", "n_trials = 0"), "search.n_trials"),
    ("space-unknown-param", _toml("space = { alpha", "space = { nope = [1, 2], alpha"),
     "search.space.nope is not a parameter of Ridge"),
    ("space-bad-value", _toml('alpha = [0.1, 10.0, "log"]', "alpha = [-1.0, 1.0]"),
     "'alpha' parameter of Ridge"),
    ("space-low-over-high", _toml('alpha = [0.1, 10.0, "log"]', "alpha = [2.0, 1.0]"),
     "search.space.alpha"),
    ("space-bad-spec", _toml('alpha = [0.1, 10.0, "log"]', 'alpha = [0.1, 10.0, "cubic"]'),
     "search.space.alpha"),
    ("space-empty-choices", _toml('alpha = [0.1, 10.0, "log"]', "alpha = { choices = [] }"),
     "search.space.alpha"),
    ("space-lags-over-max", _toml("space = { alpha", "space = { lags = [1, 99], alpha"),
     "reaches 99 > features.max_lags"),
    ("bad-storage", _toml('storage = "sqlite:///{output}/optuna.db"',
                          'storage = "nosuchdb://u:secret@host/x"'), "tuning.storage"),
    ("fill-gaps-word", _toml('value = "crimes"', 'value = "crimes"\nfill_gaps = "zero"'),
     "data.fill_gaps"),
    # -- step features, scaling, ensembles ------------------------------------------------
    ("calendar-unknown", _toml("lags = 3", 'lags = 3\ncalendar = ["weekday"]'),
     "calendar must list features among"),
    ("holiday-no-country", _toml("lags = 3", 'lags = 3\ncalendar = ["holiday"]'),
     "needs country"),
    ("country-alone", _toml("lags = 3", 'lags = 3\ncountry = "US"'), "only serves"),
    ("known-future-missing", _toml("lags = 3", 'lags = 3\nknown_future = ["temp"]'),
     "'temp', which is not a column of the data"),
    ("covariate-is-value", _toml("lags = 3", 'lags = 3\npast_covariates = ["crimes"]'),
     "date, group or value column"),
    ("covariate-twice", _toml("lags = 3", 'lags = 3\nknown_future = ["a"]\n'
                              'past_covariates = ["a"]'), "listed twice"),
    ("covariate-not-number", _covariate_text, "not numbers"),
    ("bad-scaling", _toml("lags = 3", 'lags = 3\nscaling = "robust"'), "features.scaling"),
    ("scaling-and-scale", _toml("lags = 3", 'lags = 3\nscaling = "global"\nscale = "none"'),
     "not both"),
    ("ensemble-baseline", _toml('kind = "last_value"', 'kind = "last_value"\nensemble = 3'),
     "a baseline has nothing to average"),
    ("ensemble-one", _toml('kind = "ridge"', 'kind = "ridge"\nensemble = 1'),
     "models.1.ensemble"),
    ("train-start-late", _toml("test_periods = 20",
                               'test_periods = 20\ntrain_start = "2020-04-20"'),
     "leaves no training dates before the validation dates"),
    ("train-start-bad", _toml("test_periods = 20", 'test_periods = 20\ntrain_start = "soon"'),
     "train_start 'soon' is not a date"),
    ("baseline-name-taken", _baseline_name_taken, "the hgb baseline has no name"),
    # -- the command line ------------------------------------------------------------------
    ("trials-negative", _args("--trials", "-1"), "--trials"),
    ("trials-word", _args("--trials", "many"), "--trials"),
    ("test-periods-zero", _args("--test-periods", "0"), "--test-periods"),
    ("test-start-late", _args("--test-start", "2031-01-01"), "leaves"),
    ("fill-gaps-bad", _args("--fill-gaps", "banana"), "--fill-gaps"),
    ("fill-gaps-nan", _args("--fill-gaps", "nan"), "--fill-gaps"),
    ("no-such-option", _args("--trails", "3"), "No such option"),
    ("no-experiment", lambda d: ["run", d / "nope.toml"], "experiment file not found"),
    ("foreign-output", _foreign_output, "holds files that are not a skrnn run"),
    ("output-under-file", _file_as_parent, "cannot write the output folder"),
    # -- the data --------------------------------------------------------------------------
    ("data-duplicate", _csv(_duplicate), "duplicated (group, date) key"),
    ("data-gap", _csv(_gap), "has gaps inside 1 series"),
    ("data-irregular", _csv(_irregular_last), "Irregular date"),
    ("data-infinite", _csv(lambda f: _set(f, 30, "crimes", "inf")),
     "line 32 ('inf')"),
    ("data-absurd-holdout", _csv(lambda f: _set(f, 235, "crimes", "1e308")),
     "line 237 ('1e308')"),
    ("data-empty-cell", _csv(lambda f: _set(f, 40, "crimes", "")),
     "empty value cell(s) in 'crimes', e.g."),
    ("data-not-number", _csv(lambda f: _set(f, 12, "crimes", "twelve")), "not numbers"),
    ("data-bad-date", _csv(lambda f: _set(f, 5, "date", "31/02/2020")),
     "could not be parsed as dates"),
    ("data-missing-column", _csv(lambda f: f, "--value-col", "Incidents"),
     "column(s) ['Incidents']"),
    ("data-wrong-sep", _csv(_semicolons), "--sep"),
    ("data-missing-group", _csv(lambda f: _set(f, 3, "district", np.nan)),
     "missing label"),
    # -- show and predict ------------------------------------------------------------------
    ("show-no-manifest", _show(_strip_manifest), "holds no finished run"),
    ("show-changed-file", _show(_append_to_results), "results.csv is changed"),
    ("predict-gap", _predict(_gap), "has gaps inside 1 series"),
    ("predict-duplicate", _predict(_duplicate), "duplicated (group, date) key"),
    ("predict-irregular-last-date", _predict(_irregular_last), "Irregular date"),
    ("predict-weekly-data", _predict(lambda f: f[pd.to_datetime(f["date"]).dt.dayofweek == 0]),
     "has gaps"),
    ("predict-short-series", _predict(_short_history), "the model needs the last 7"),
    ("predict-infinite", _predict(lambda f: _set(f, 30, "crimes", "-inf")), "line 32"),
    ("predict-empty-cell", _predict(lambda f: _set(f, 30, "crimes", "")), "--fill-gaps"),
    ("predict-no-data-file", lambda d: ["predict", "--model", d / "run/models/ridge.skops",
                                        "--data", d / "nope.csv"], "no such file"),
    ("predict-unknown-model", _predict(None, "lasso"), "this run's models"),
    ("predict-not-in-run", lambda d: ["predict", "--model", d / "panel.csv", "--data",
                                      d / "panel.csv"], "is not a model of a run"),
    ("predict-incomplete-run", lambda d: (_strip_manifest(d), _predict()(d))[1],
     "holds no finished run"),
    ("predict-truncated-model", _model_file(_truncate), "not a skops model file"),
    ("predict-garbled-model", _model_file(_garble), "ridge.skops"),
    ("predict-other-object", _model_file(_other_object), "holds a StandardScaler"),
]


@pytest.mark.parametrize("edit, expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_user_error(case, edit, expected):
    args = edit(case)
    before = snapshot(case / "run")
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert expected in lines[0], lines[0]
    assert "Traceback" not in result.output
    assert "secret" not in lines[0]  # storage passwords are redacted
    # the previous run is untouched, and nothing was left beside it
    if (case / "run" / "manifest.json").exists():
        assert snapshot(case / "run") == before
    leftovers = [p.name for p in case.iterdir()
                 if p.name.startswith((".run.", "run.previous"))]
    assert leftovers == []


def test_there_are_at_least_forty_cases():
    assert len(CASES) >= 40 and len({c[0] for c in CASES}) == len(CASES)


def test_model_file_errors_never_print_the_content(finished, tmp_path):
    from skrnn.experiment import ExperimentError, load_model

    path = tmp_path / "m.skops"
    path.write_bytes(b"PK\x03\x04" + b"x" * 200_000)
    with pytest.raises(ExperimentError) as err:
        load_model(path)
    assert "m.skops" in str(err.value) and len(str(err.value)) < 300


def test_debug_shows_the_traceback(case):
    path = case / "fast.toml"
    path.write_text(path.read_text().replace("test_periods = 20", "test_periods = 5000"))
    result = CliRunner().invoke(main, ["--debug", "run", str(path), "--quiet"])
    assert result.exit_code != 0
    assert result.exc_info[0].__name__ == "ExperimentError"
