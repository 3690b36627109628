"""The ``skrnn`` command: run experiments, list and show them, forecast with a saved model.

Every user error (a bad option, experiment file, data file, model file or output
folder) ends the command with one line, ``Error: ...``, and exit status 2; ``skrnn
--debug <command>`` shows the traceback instead.
"""

import contextlib
import math
import os
import sys
import warnings
from pathlib import Path

from skrnn._optional import require

require("click", "rich", "pydantic", "optuna", "mlflow", "matplotlib", by="the skrnn command",
        extra="cli")

import click

EXIT_USER_ERROR = 2


class UserError(click.ClickException):
    """A mistake the user can fix: one line on stderr, exit status 2."""

    exit_code = EXIT_USER_ERROR

    def __init__(self, message):
        super().__init__(_one_line(message))


def _one_line(message):
    return " ".join(str(message).split())


class _Group(click.Group):
    """Click's group, with its usage errors on one line too."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True,
             **extra):
        try:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.UsageError as exc:
            hint = f" (see '{exc.ctx.command_path} -h')" if exc.ctx is not None else ""
            click.echo(f"Error: {_one_line(exc.format_message())}{hint}", err=True)
            code = EXIT_USER_ERROR
        except click.ClickException as exc:
            exc.show()
            code = exc.exit_code
        except click.Abort:
            click.echo("Aborted.", err=True)
            code = 130
        if standalone_mode:
            sys.exit(code)
        return code


@contextlib.contextmanager
def _user_errors():
    """Turn the errors a user causes into :class:`UserError` (unless ``--debug``)."""
    from skrnn.experiment import ExperimentError, interrupted

    debug = bool((click.get_current_context().find_root().obj or {}).get("debug"))
    try:
        yield
    except click.ClickException:
        raise
    except BaseException as exc:
        if debug or isinstance(exc, (SystemExit, GeneratorExit)):
            raise
        if interrupted(exc):
            click.echo("Interrupted: nothing was published; finished trials are kept.",
                       err=True)
            sys.exit(130)
        if isinstance(exc, (ExperimentError, ValueError, TypeError, OSError)):
            raise UserError(str(exc) or type(exc).__name__) from None
        raise


def _console():
    from rich.console import Console

    return Console()


def _print_table(console, table, title):
    from rich.markup import escape
    from rich.table import Table

    view = Table(title=escape(str(title)))
    for col in table.columns:
        view.add_column(escape(str(col)),
                        justify="right" if table[col].dtype.kind in "fi" else "left")
    for row in table.itertuples(index=False):
        view.add_row(*[escape(_cell(v)) for v in row])
    console.print(view)


def _cell(value):
    if isinstance(value, float):
        return f"{value:.4g}"
    if hasattr(value, "normalize") and value == value.normalize():  # a date at midnight
        return str(value.date())
    return str(value)


def _fill_gaps(ctx, param, value):
    if value is None or value in ("ffill", "interpolate"):
        return value
    try:
        number = float(value)
    except ValueError:
        number = None
    if number is None or not math.isfinite(number):
        raise click.BadParameter(f"{value!r}: use a finite number, ffill or interpolate")
    return number


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="skrnn")
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
@click.pass_context
def main(ctx, debug):
    """Recurrent neural networks as scikit-learn estimators, and the forecasting workflow."""
    ctx.obj = {"debug": debug}


@main.command()
@click.argument("experiment", default="default")
@click.option("--data", "data_path", type=click.Path(dir_okay=False),
              help="A CSV to use instead of the experiment's data.")
@click.option("--date-col", help="Date column of --data.")
@click.option("--group-col", help="Group (series) column of --data, for panels.")
@click.option("--value-col", help="Value column of --data.")
@click.option("--sep", help="Field separator of the CSV (default ',').")
@click.option("--date-format", help="strftime format of the CSV's dates, e.g. '%d/%m/%Y'.")
@click.option("--fill-gaps", callback=_fill_gaps,
              help="Fill missing dates and empty values: a number, ffill or interpolate.")
@click.option("--test-start", help="Hold out the dates from this one on.")
@click.option("--test-periods", type=click.IntRange(min=1), help="Hold out the last N dates.")
@click.option("--output", type=click.Path(file_okay=False), help="Output folder.")
@click.option("--trials", type=click.IntRange(min=1),
              help="Override every search's number of trials.")
@click.option("--fresh", is_flag=True, help="Start the searches over (delete their studies).")
@click.option("--no-tracking", is_flag=True, help="Do not record MLflow runs.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def run(experiment, data_path, date_col, group_col, value_col, sep, date_format, fill_gaps,
        test_start, test_periods, output, trials, fresh, no_tracking, quiet):
    """Run EXPERIMENT (a TOML file, or a name in ./pipelines or among the built-in
    experiments, which `skrnn list` shows; default: 'default').

    Prints the results table and writes results.csv, predictions.csv, plots, the
    fitted models and the Optuna studies to the output folder, atomically: a previous
    run there is moved aside. Running the same experiment again resumes its searches;
    a changed model, search space or data starts new ones.
    """
    import optuna

    from skrnn.experiment import load_experiment, override_experiment, run_experiment

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    _quiet_interrupted_trials()
    console = _console()
    with _user_errors():
        exp = load_experiment(experiment)
        data = {}
        if data_path:
            data.update(source="csv", path=str(Path(data_path).resolve()))
        for key, value in (("date", date_col), ("group", group_col), ("value", value_col),
                           ("sep", sep), ("date_format", date_format),
                           ("fill_gaps", fill_gaps)):
            if value is not None:
                data[key] = value
        split = {}
        if test_start is not None or test_periods is not None:
            split = {"test_start": test_start, "test_periods": test_periods}
        if data or split:
            exp = override_experiment(exp, data=data, split=split)
        out = Path(output) if output else exp.output_dir
        table = run_experiment(exp, output=out, track=False if no_tracking else None,
                               progress=not quiet, console=console, n_trials=trials,
                               fresh=fresh)
    _print_table(console, table, f"{exp.name}: one-step-ahead holdout")
    console.print(f"Results, predictions, plots and models in {out}/", markup=False,
                  soft_wrap=True)


class _NoInterrupt:
    """A logging filter that drops records of an interrupt (one instance, so that repeated
    in-process runs do not pile filters onto the shared handlers)."""

    def filter(self, record):
        from skrnn.experiment import interrupted

        exc = record.exc_info[1] if record.exc_info else None
        return not interrupted(exc) and "KeyboardInterrupt" not in str(record.getMessage())


_NoInterrupt.instance = _NoInterrupt()


def _quiet_interrupted_trials():
    """Optuna (a trial stopped by Ctrl-C), MLflow and SQLAlchemy (a database call cut by
    it) log the interrupt with a traceback; the CLI says it once. The filter sits on their
    handlers, which see the records of every child logger, and on Python's handler of last
    resort, which prints the records of loggers without a handler (SQLAlchemy's pool logs
    "Error closing cursor" there when the interrupt cuts a query)."""
    import logging

    import mlflow  # noqa: F401  (sets up the handler of the "mlflow" logger)

    quiet = _NoInterrupt.instance
    if logging.lastResort is not None:
        logging.lastResort.addFilter(quiet)
    for name in ("optuna", "mlflow", "sqlalchemy"):
        logger = logging.getLogger(name)
        logger.addFilter(quiet)
        for handler in logger.handlers:
            handler.addFilter(quiet)


@main.command(name="list")
@click.option("--pipelines", "folder", type=click.Path(file_okay=False),
              help="Folder of experiments  [default: ./pipelines, then the built-in ones]")
@click.option("--results", default="results", show_default=True,
              type=click.Path(file_okay=False))
def list_(folder, results):
    """List the experiments (./pipelines, built-in) and the runs found under ./results."""
    from rich.markup import escape

    from skrnn._bundled import experiment_dirs
    from skrnn.experiment import ExperimentError, load_experiment

    console = _console()
    dirs = [Path(folder)] if folder else experiment_dirs()
    console.print(f"Experiments looked up in: {', '.join(str(d.absolute()) for d in dirs)}",
                  soft_wrap=True)
    seen = set()
    paths = [p for d in dirs for p in sorted(d.glob("*.toml"))
             if not (p.stem in seen or seen.add(p.stem))]  # ./pipelines shadows built-in
    for path in paths:
        try:
            exp = load_experiment(path)
            console.print(f"[bold]{escape(path.stem)}[/bold]  {escape(exp.description)}")
        except ExperimentError as exc:
            console.print(f"[red]{escape(path.stem)}[/red]  invalid: "
                          f"{escape(str(exc).splitlines()[0])}")
    for table in sorted(Path(results).glob("*/results.csv")):
        console.print(f"run: {table.parent}", markup=False)


@main.command()
@click.argument("run_dir", type=click.Path(file_okay=False))
def show(run_dir):
    """Show the results table of a finished run (its output folder)."""
    import pandas as pd

    from skrnn.experiment import check_run

    with _user_errors():
        manifest = check_run(run_dir)
        table = pd.read_csv(Path(run_dir) / "results.csv")
    _print_table(_console(), table, f"{run_dir} ({manifest.get('finished', '?')})")


@main.command()
@click.option("--model", "model_path", required=True, type=click.Path(dir_okay=False),
              help="A model saved by 'skrnn run' (results/<name>/models/<model>.skops).")
@click.option("--data", "data_path", required=True, type=click.Path(dir_okay=False),
              help="CSV with the history of each series (and, for a model with "
                   "known-future covariates, each series' row of the forecast date with "
                   "those columns and an empty value).")
@click.option("--date-col", help="Date column (default: the experiment's).")
@click.option("--group-col", help="Group column (default: the experiment's).")
@click.option("--value-col", help="Value column (default: the experiment's).")
@click.option("--sep", help="Field separator of the CSV (default: the experiment's).")
@click.option("--date-format", help="strftime format of the CSV's dates.")
@click.option("--fill-gaps", callback=_fill_gaps,
              help="Fill missing dates and empty values (default: the experiment's).")
@click.option("--output", default="forecasts.csv", show_default=True,
              type=click.Path(dir_okay=False))
def predict(model_path, data_path, date_col, group_col, value_col, sep, date_format,
            fill_gaps, output):
    """Forecast the next value of every series of --data with a saved model.

    --data is checked as 'skrnn run' checks its data (dates on the run's grid, no
    duplicates, gaps filled only as the experiment or --fill-gaps says), and each
    forecast comes from the series' latest window, with the run's step features:
    calendar features of the dates, past covariates from the history, known-future
    covariates of the forecast date from its row in --data.
    """
    from skrnn.experiment import forecast_next

    kwargs = {} if fill_gaps is None else {"fill_gaps": fill_gaps}
    with _user_errors():
        if not Path(data_path).is_file():
            raise UserError(f"--data {data_path}: no such file")
        table = forecast_next(model_path, data_path, date=date_col, group=group_col,
                              value=value_col, sep=sep, date_format=date_format, **kwargs)
        tmp = Path(f"{output}.partial-{os.getpid()}")
        table.to_csv(tmp, index=False)
        os.replace(tmp, output)
    _print_table(_console(), table.head(20), f"forecasts → {output}")


@main.command(name="predict-panel")
@click.argument("model_path", metavar="MODEL", type=click.Path(dir_okay=False))
@click.argument("data_path", metavar="DATA", type=click.Path(dir_okay=False))
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False),
              help="Output file: Parquet when it ends in .parquet, else CSV; must not exist.")
@click.option("--chunk-series", type=click.IntRange(min=1), default=10_000,
              show_default=True, help="Series forecast (and written) per chunk.")
@click.option("--window", type=click.IntRange(min=1),
              help="Steps per window (default: the run's max_lags, else the model's inputs).")
@click.option("--date-col", help="Date column (default: the run's, if MODEL is from one).")
@click.option("--group-col", help="Group (series) column (default: the run's).")
@click.option("--value-col", help="Value column (default: the run's).")
@click.option("--sep", default=None, help="Field separator of a CSV DATA (default: the "
              "run's, else ',').")
@click.option("--date-format", help="strftime format of a CSV's dates (default: the run's).")
@click.option("--fill-gaps", callback=_fill_gaps,
              help="Fill missing dates: a number, ffill or interpolate (default: the run's, "
              "else refuse).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def predict_panel(model_path, data_path, out, chunk_series, window, date_col, group_col,
                  value_col, sep, date_format, fill_gaps, quiet):
    """Forecast the next value of every series of a large panel, chunk by chunk.

    MODEL is a .skops file (a model of 'skrnn run', or any regressor of value-only
    windows saved with skrnn.persistence.save); DATA a long CSV or Parquet table, one
    row per series and date. DATA is read and checked by the same code as the data of
    'skrnn run' and 'skrnn predict' (group keys as text, dates, numbers, no infinite or
    absurd values, empty cells and missing dates refused unless filled, the run's date
    frequency), reading only the date, group and value columns. Each series' latest
    window is forecast; the forecasts are written --chunk-series series at a time, so
    memory stays bounded by one chunk (plus the panel's values). The file appears only
    once complete.
    """
    import json

    import numpy as np
    import pandas as pd

    from skrnn._experiment.config import DataConfig
    from skrnn._experiment.data import check_panel, load_data
    from skrnn._experiment.predict import load_model
    from skrnn.windows import predict_to_file

    with _user_errors():
        meta_path = Path(model_path).parent / "windows.json"
        meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
        _value_only_windows(meta, model_path, window)
        date, group = date_col or meta.get("date"), group_col or meta.get("group")
        value = value_col or meta.get("value")
        if value is None:
            raise UserError("--value-col is needed (MODEL is not from a run)")
        if date is None:
            raise UserError("--date-col is needed (MODEL is not from a run): each series' "
                            "rows are put in order, and checked, by their dates")
        if fill_gaps is None:
            fill_gaps = meta.get("fill_gaps")
        if Path(out).exists():
            raise UserError(f"--out {out} exists; choose a new file (nothing is overwritten)")
        for path in (model_path, data_path):
            if not Path(path).is_file():
                raise UserError(f"{path}: no such file")
        model = load_model(model_path)
        window = window or meta.get("max_lags") or getattr(model, "n_features_in_", None)
        if window is None:
            raise UserError("--window is needed (the model does not say its inputs)")
        cfg = DataConfig(source="csv", path=str(Path(data_path).resolve()), date=date,
                         group=group, value=value, fill_gaps=fill_gaps,
                         sep=sep or meta.get("sep") or ",",
                         date_format=date_format or meta.get("date_format"))
        frame = load_data(cfg)
        grid = check_panel(frame, cfg, freq=meta.get("freq"))
        short = np.flatnonzero(grid.lengths < window)
        if short.size:
            label = grid.labels[short[0]] if grid.labels is not None else "the series"
            raise UserError(
                f"{short.size} series are shorter than window={window}, e.g. {label!r} "
                f"with {grid.lengths[short[0]]} dates; drop or pad them first")
        values = grid.values(frame[[value]].to_numpy(dtype=np.float64), fill_gaps)[:, 0]
        last = pd.DatetimeIndex(frame[date].to_numpy()[grid.src[grid.starts + grid.lengths - 1]])
        step = grid.freq if grid.freq is not None else pd.NaT  # one date each: no step
        # named as the run's windows: per-series scaling finds each row's series by the
        # run's group name
        keys = [pd.Index(last + step, name=meta.get("date") or date),  # the date forecast
                pd.Index(grid.labels if grid.labels is not None else [0],
                         name=meta.get("group") or group or "series")]
        index = pd.MultiIndex.from_arrays(keys)
        names = getattr(model, "feature_names_in_", None)
        if names is None:  # a target transformer around the fitted pipeline
            names = getattr(getattr(model, "regressor_", None), "feature_names_in_", None)
        columns = None if names is None else list(names)
        tmp = Path(out).with_name(f"{Path(out).stem}.partial-{os.getpid()}{Path(out).suffix}")
        try:
            n = predict_to_file(model, values, grid.lengths, tmp, window=window,
                                series_per_chunk=chunk_series, progress=False if quiet else None,
                                index=index, columns=columns)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        os.replace(tmp, out)
    click.echo(f"{n} forecasts -> {out}")


def _value_only_windows(meta, model_path, window):
    """Refuse a run's model that reads more than its series' past values, or windows of
    another length than --window: predict-panel builds value-only windows."""
    extra = [k for k in ("calendar", "known_future", "past_covariates", "static")
             if meta.get(k)]
    if extra or meta.get("n_step_features", 1) != 1:
        what = ", ".join(f"{k} = {meta[k]!r}" for k in extra) or (
            f"{meta['n_step_features']} features per step")
        raise UserError(f"{model_path} reads more than the past values ({what}); "
                        "predict-panel builds value-only windows (skrnn predict builds "
                        "step features)")
    if window is not None and meta.get("max_lags") not in (None, window):
        raise UserError(f"--window {window}: {model_path} reads windows of "
                        f"{meta['max_lags']} steps (its run's features.max_lags)")


@main.command()
@click.option("--epochs", type=int, default=15, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
def demo(epochs, seed):
    """The three recurrent regressors vs the last-value baseline on noisy sines."""
    import time

    import numpy as np
    import pandas as pd
    from sklearn.exceptions import ConvergenceWarning

    from skrnn import GRURegressor, LSTMRegressor, SimpleRNNRegressor
    from skrnn.datasets import make_sine_batch

    X, y = make_sine_batch(3000, random_state=seed)
    X, Xt, y, yt = X[:2000], X[2000:], y[:2000], y[2000:]
    naive = float(np.mean((Xt[:, -1] - yt) ** 2))
    rows = [{"model": "last value", "MSE": naive, "skill": 0.0, "fit_s": 0.0}]
    for cls in (SimpleRNNRegressor, LSTMRegressor, GRURegressor):
        model = cls(units=16, batch_size=32, max_iter=epochs, learning_rate_init=0.01,
                    random_state=seed, dtype="float32")
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(X, y)
        mse = float(np.mean((model.predict(Xt) - yt) ** 2))
        rows.append({"model": cls.__name__, "MSE": mse, "skill": 1 - mse / naive,
                     "fit_s": time.perf_counter() - start})
    _print_table(_console(), pd.DataFrame(rows), "noisy sine, next value (test MSE)")


if __name__ == "__main__":
    sys.exit(main())
