"""The life of a run folder: the output checks, the staging folder, the studies'
storage carried over between runs, publishing (manifest last, atomic renames),
recovering an interrupted run, and checking a finished one (:func:`check_run`)."""

import json
import os
import shutil
import signal
import time
from pathlib import Path

from skrnn._experiment.config import ExperimentError

MANIFEST = "manifest.json"

# What a run folder may hold; an existing folder with anything else is not ours to move.
_RUN_ENTRIES = {"results.csv", "predictions.csv", "experiment.json", "optuna.db", "models",
                "tuning", "timings.json", MANIFEST}


def _checkpoint(stage):
    """Test hook: die here, as a SIGKILL would, when ``_SKRNN_KILL_AT`` names ``stage``."""
    if os.environ.get("_SKRNN_KILL_AT") == stage:
        os.kill(os.getpid(), getattr(signal, "SIGKILL", signal.SIGTERM))


def _study_file(exp):
    """The SQLite file of the studies, relative to the output folder (None if elsewhere)."""
    url = exp.tuning.storage
    if url and url.startswith("sqlite:///{output}/"):
        rel = Path(url[len("sqlite:///{output}/"):])
        return None if ".." in rel.parts or "{" in str(rel) else rel
    return None


def _check_output(out, study_file):
    if out.exists() and not out.is_dir():
        raise ExperimentError(f"the output {out} exists and is not a folder")
    if out.is_dir() and not (out / MANIFEST).exists():
        allowed = _RUN_ENTRIES | ({study_file.parts[0]} if study_file else set())
        other = sorted(p.name for p in out.iterdir() if p.name not in allowed
                       and not p.name.endswith(".png") and not p.name.startswith("optuna.db"))
        if other:
            raise ExperimentError(
                f"the output folder {out} holds files that are not a skrnn run (e.g. "
                f"{other[:3]}): choose another --output"
            )


def _partials(out):
    return sorted(out.parent.glob(f".{out.name}.partial-*"), key=lambda p: p.stat().st_mtime)


def _pid_alive(path):
    try:
        pid = int(path.name.rsplit("-", 1)[1])
        os.kill(pid, 0)
    except (ValueError, IndexError, ProcessLookupError):
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def _recover(out, study_file=None):
    """Finish a run that was killed between its last two renames; clear dead partial runs.

    A partial folder with a manifest is complete: if ``out`` is missing it is put in
    place. The studies of incomplete partial runs of dead processes are kept (in
    ``.<output>.unfinished``) for the next run to resume.
    """
    out = Path(out)
    if not out.parent.is_dir():
        return
    partials = [p for p in _partials(out) if not _pid_alive(p)]
    done = [p for p in partials if (p / MANIFEST).is_file()]
    if done and not out.exists():
        os.replace(done[-1], out)
        partials.remove(done[-1])
    if study_file is not None:
        for p in partials:
            _abandon(p, out, study_file)


def _new_staging(out):
    staging = out.parent / f".{out.name}.partial-{os.getpid()}"
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        if staging.exists():
            shutil.rmtree(staging)
        staging.mkdir()
    except OSError as exc:
        why = ("a file is in the way" if isinstance(exc, (FileExistsError, NotADirectoryError))
               else exc.strerror or str(exc))
        raise ExperimentError(f"cannot write the output folder {out}: {why}") from None
    return staging


def _sqlite_family(path):
    """A SQLite file and its journals."""
    return [p for p in (path, Path(f"{path}-journal"), Path(f"{path}-wal"),
                        Path(f"{path}-shm")) if p.exists()]


def _unfinished(out):
    return out.parent / f".{out.name}.unfinished"


def _open_storage(exp, out, staging, study_file):
    """The studies' storage; a SQLite file in the output folder is carried over."""
    from skrnn.tuning import _redact, make_storage

    url = exp.tuning.storage
    if study_file is not None:
        source = _unfinished(out) / study_file
        if not source.exists():
            source = out / study_file
        target = staging / study_file
        target.parent.mkdir(parents=True, exist_ok=True)
        for path in _sqlite_family(source):
            shutil.copy2(path, target.parent / path.name.replace(source.name, target.name))
        url = "sqlite:///" + target.as_posix()
    else:
        url = url.format(output=out.as_posix())
    try:
        return make_storage(url)
    except Exception as exc:  # noqa: BLE001 - sqlalchemy/optuna raise many kinds; all mean "unusable"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise ExperimentError(
            f"tuning.storage {_redact(exp.tuning.storage)!r} cannot be opened: "
            f"{type(exc).__name__}: {first}") from None


def _abandon(staging, out, study_file):
    """Drop an unfinished run's folder, keeping its studies for the next run."""
    if study_file is not None and (staging / study_file).exists():
        keep = _unfinished(out) / study_file
        keep.parent.mkdir(parents=True, exist_ok=True)
        for path in _sqlite_family(staging / study_file):
            os.replace(path, keep.parent / path.name)
    shutil.rmtree(staging, ignore_errors=True)


def _publish(staging, out, exp, fitted, study_file, say):
    """Manifest last, then rename the staging folder into place."""
    import datetime

    from skrnn import __version__

    files = {p.relative_to(staging).as_posix(): p.stat().st_size
             for p in sorted(staging.rglob("*")) if p.is_file()
             and not (study_file and p.name.startswith(study_file.name))}
    manifest = {
        "format": 1, "skrnn_version": __version__, "experiment": exp.name,
        "finished": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "models": {name: f"models/{name}.skops" for name in fitted},
        "files": files,
    }
    tmp = staging / f"{MANIFEST}.tmp"
    tmp.write_text(json.dumps(manifest, indent=2))
    os.replace(tmp, staging / MANIFEST)
    _checkpoint("manifest")
    if out.is_dir() and not any(out.iterdir()):
        out.rmdir()  # an empty folder holds no previous run to keep
    if out.exists():
        aside = out.parent / f"{out.name}.previous-{time.strftime('%Y%m%d-%H%M%S')}"
        k = 1
        while aside.exists():
            k += 1
            aside = aside.with_name(f"{aside.name.split('~')[0]}~{k}")
        os.replace(out, aside)
        _checkpoint("moved-aside")
        say(f"the previous run was moved to {aside}")
    os.replace(staging, out)
    shutil.rmtree(_unfinished(out), ignore_errors=True)


def check_run(run_dir):
    """The manifest of the finished run in ``run_dir``; refuse anything incomplete.

    Raises
    ------
    ExperimentError
        No manifest (an interrupted run, or not a run), or a listed file is missing
        or has another size than when the run finished.
    """
    run_dir = Path(run_dir)
    _recover(run_dir)
    if not run_dir.is_dir():
        raise ExperimentError(f"{run_dir} is not a folder")
    path = run_dir / MANIFEST
    if not path.is_file():
        raise ExperimentError(
            f"{run_dir} holds no finished run (no {MANIFEST}): the run was interrupted, is "
            "from an older skrnn, or the folder is not a skrnn run; run it again")
    try:
        manifest = json.loads(path.read_text())
        files = dict(manifest["files"])
    except (ValueError, KeyError, TypeError):
        raise ExperimentError(f"{path} is not a valid run manifest") from None
    for rel, size in files.items():
        f = run_dir / rel
        if not f.is_file() or f.stat().st_size != size:
            raise ExperimentError(
                f"{run_dir} is not the run its manifest describes: {rel} is "
                f"{'missing' if not f.is_file() else 'changed'}")
    return manifest
