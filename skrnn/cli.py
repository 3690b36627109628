"""The ``skrnn`` command: run experiments, list and show them, forecast with a saved model."""

import sys
import warnings
from pathlib import Path

from skrnn._optional import require

require("click", "rich", "pydantic", "optuna", "mlflow", "matplotlib", by="the skrnn command",
        extra="cli")

import click


def _console():
    from rich.console import Console

    return Console()


def _print_table(console, table, title):
    from rich.table import Table

    view = Table(title=title)
    for col in table.columns:
        view.add_column(str(col), justify="right" if table[col].dtype.kind in "fi" else "left")
    for row in table.itertuples(index=False):
        view.add_row(*[f"{v:.4g}" if isinstance(v, float) else str(v) for v in row])
    console.print(view)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="skrnn")
def main():
    """Recurrent neural networks as scikit-learn estimators, and the forecasting workflow."""


@main.command()
@click.argument("experiment", default="default")
@click.option("--data", "data_path", type=click.Path(dir_okay=False),
              help="A CSV to use instead of the experiment's data.")
@click.option("--date-col", help="Date column of --data.")
@click.option("--group-col", help="Group (series) column of --data, for panels.")
@click.option("--value-col", help="Value column of --data.")
@click.option("--output", type=click.Path(file_okay=False), help="Output folder.")
@click.option("--trials", type=int, help="Override every search's number of trials.")
@click.option("--no-tracking", is_flag=True, help="Do not record MLflow runs.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def run(experiment, data_path, date_col, group_col, value_col, output, trials, no_tracking,
        quiet):
    """Run EXPERIMENT (a TOML file, or a name in ./pipelines or among the built-in
    experiments, which `skrnn list` shows; default: 'default').

    Prints the results table and writes results.csv, predictions.csv, plots, the
    fitted models and the Optuna studies to the output folder. Running it again
    resumes the searches: finished trials are not repeated.
    """
    import optuna

    from skrnn.experiment import ExperimentError, load_experiment, run_experiment

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    console = _console()
    try:
        exp = load_experiment(experiment)
        if data_path:
            update = {"source": "csv", "path": str(Path(data_path).resolve())}
            for key, value in (("date", date_col), ("group", group_col), ("value", value_col)):
                if value:
                    update[key] = value
            exp = exp.model_copy(update={"data": exp.data.model_copy(update=update)})
        table = run_experiment(exp, output=output, track=False if no_tracking else None,
                               progress=not quiet, console=console, n_trials=trials)
    except ExperimentError as exc:
        raise click.ClickException(str(exc)) from None
    _print_table(console, table, f"{exp.name}: one-step-ahead holdout")
    out = Path(output) if output else exp.output_dir
    console.print(f"Results, predictions, plots and models in {out}/")


@main.command(name="list")
@click.option("--pipelines", "folder", type=click.Path(file_okay=False),
              help="Folder of experiments  [default: ./pipelines, then the built-in ones]")
@click.option("--results", default="results", show_default=True,
              type=click.Path(file_okay=False))
def list_(folder, results):
    """List the experiments (./pipelines, built-in) and the runs found under ./results."""
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
            console.print(f"[bold]{path.stem}[/bold]  {exp.description}")
        except ExperimentError as exc:
            console.print(f"[red]{path.stem}[/red]  invalid: {str(exc).splitlines()[0]}")
    for table in sorted(Path(results).glob("*/results.csv")):
        console.print(f"run: {table.parent}")


@main.command()
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
def show(run_dir):
    """Show the results table of a finished run (its output folder)."""
    import pandas as pd

    path = Path(run_dir) / "results.csv"
    if not path.exists():
        raise click.ClickException(f"{run_dir} holds no results.csv: not a finished run")
    _print_table(_console(), pd.read_csv(path), str(run_dir))


@main.command()
@click.option("--model", "model_path", required=True, type=click.Path(exists=True),
              help="A model saved by 'skrnn run' (results/<name>/models/<model>.skops).")
@click.option("--data", "data_path", required=True, type=click.Path(exists=True, dir_okay=False),
              help="CSV with the history of each series.")
@click.option("--date-col", help="Date column (default: the experiment's).")
@click.option("--group-col", help="Group column (default: the experiment's).")
@click.option("--value-col", help="Value column (default: the experiment's).")
@click.option("--output", default="forecasts.csv", show_default=True,
              type=click.Path(dir_okay=False))
def predict(model_path, data_path, date_col, group_col, value_col, output):
    """Forecast the next value of every series of --data with a saved model."""
    from skrnn.experiment import forecast_next

    try:
        table = forecast_next(model_path, data_path, date=date_col, group=group_col,
                              value=value_col)
    except (ValueError, TypeError) as exc:
        raise click.ClickException(str(exc)) from None
    table.to_csv(output, index=False)
    _print_table(_console(), table.head(20), f"forecasts → {output}")


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
