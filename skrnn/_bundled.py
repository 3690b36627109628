"""Where the built-in experiments are: ``pipelines/`` shipped inside the package.

The repository keeps them in ``pipelines/`` at its root. A wheel (``pip install .``)
carries a copy as ``skrnn/pipelines/`` (``setup.py`` copies it at build time); an
editable install or a source checkout on ``PYTHONPATH`` reads the repository's folder
itself. ``skrnn run NAME`` and ``skrnn list`` look in ``./pipelines`` first (a user's
own experiments), then here, so they work from any directory.
"""

from pathlib import Path

__all__ = ["builtin_experiments_dir", "experiment_dirs"]

_PACKAGE = Path(__file__).resolve().parent


def builtin_experiments_dir():
    """The folder of the built-in experiment files, or None when there is none.

    Returns
    -------
    folder : Path or None
        ``skrnn/pipelines`` of an installed wheel, else the ``pipelines`` folder of
        the source checkout this package was imported from.
    """
    shipped = _PACKAGE / "pipelines"
    if shipped.is_dir():
        return shipped
    checkout = _PACKAGE.parent
    # only a source checkout (its pyproject.toml beside the package), never a
    # stray "pipelines" folder in site-packages
    if (checkout / "pyproject.toml").is_file() and (checkout / "pipelines").is_dir():
        return checkout / "pipelines"
    return None


def experiment_dirs():
    """The folders an experiment name is looked up in, in order: ./pipelines, built-in.

    Returns
    -------
    folders : list of Path
        ``Path("pipelines")`` (relative to the current directory), then
        :func:`builtin_experiments_dir` unless it is the same folder or missing.
    """
    dirs = [Path("pipelines")]
    builtin = builtin_experiments_dir()
    if builtin is not None and builtin.resolve() != dirs[0].resolve():
        dirs.append(builtin)
    return dirs
