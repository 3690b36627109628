"""Mutation testing of skrnn's lifecycle and plumbing modules with mutmut.

Outside the default test command: it runs each module's mutants against the
fast test files that exercise it, in a throw-away copy of the repository, and
writes a Markdown table of the mutation score per module.

    python benchmarks/mutation.py                       # every module, a fifth of the mutants
    python benchmarks/mutation.py --modules lags --sample all
    python benchmarks/mutation.py --repo /path/to/other/checkout --out before.md

Needs ``pip install mutmut==3.8.1`` (Linux: mutmut forks one process per mutant).
The CPU cost is one run of a module's test selection to learn which tests reach
which function, then, per mutant, the tests that reach the mutated function
(stopping at the first failure). ``--sample`` keeps the mutants whose number ends
in the given digits: ``fifth`` (0 or 5, about 20%), ``half`` (even) or ``all``.

Score = killed / (killed + survived): mutants no selected test reaches ("no
tests") are listed apart, as are timeouts (counted as killed, as mutmut does).
"""

import argparse
import datetime
import fnmatch
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MUTMUT = Path(sys.executable).with_name("mutmut")

# where each part of the plumbing lives, which functions of a shared module are
# in scope, and the fast tests that exercise it (subprocess, kill and PostgreSQL
# tests are left out: slow, and a child process would not see the mutant)
MODULES = {
    "training loop (_training.py)": {
        "path": "skrnn/_training.py",
        "tests": ["tests/estimators/test_recurrent.py", "tests/estimators/test_lifecycle.py",
                  "tests/estimators/test_recurrent_sequence_targets.py", "-k",
                  "not gridsearch and not remember and not beats_last and not ten_ahead"],
    },
    "persistence.py": {
        "path": "skrnn/persistence.py",
        "tests": ["tests/estimators/test_persistence.py",
                  "tests/estimators/test_persistence_contract.py", "-k", "not fresh_process"],
    },
    "tuning.py": {
        "path": "skrnn/tuning.py",
        "tests": ["tests/workflow/test_tuning.py", "tests/workflow/test_tuning_glue.py", "-k",
               "not killed and not two_worker and not tracked and not prunes_and_beats"],
    },
    "tracking (tracking.py, _tracking_*.py)": {
        "paths": ["skrnn/tracking.py", "skrnn/_tracking_base.py", "skrnn/_tracking_callback.py",
                  "skrnn/_tracking_models.py", "skrnn/_tracking_runs.py"],
        "tests": ["tests/workflow/test_tracking.py", "tests/workflow/test_tracking_run_stack.py",
                  "-k", "not fresh_process and not import_skrnn"],
    },
    "forecast_next (_experiment/predict.py)": {
        "path": "skrnn/_experiment/predict.py",
        "functions": ["skrnn._experiment.predict.x_forecast_next"],
        "tests": ["tests/workflow/test_cli.py", "tests/workflow/test_forecast_next.py", "-k",
                  "predict or forecast"],
    },
    "lags.py": {"path": "skrnn/lags.py",
                "tests": ["tests/estimators/test_lags.py",
                          "tests/estimators/test_lags_contract.py"]},
}
SAMPLES = {"all": "", "half": "[02468]", "fifth": "[05]"}



def _copy_repo(src, dst):
    """The tracked and untracked (not ignored) files of ``src``, and the compiled engine."""
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"], cwd=src, check=True,
        capture_output=True, text=True).stdout.splitlines()
    for rel in files:
        p = Path(src, rel)
        if p.is_file() and not rel.startswith(("mlruns/", "notebooks/")):
            Path(dst, rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(p, Path(dst, rel))
    for so in Path(src, "skrnn", "nn").glob("_fastrnn*.so"):
        shutil.copy2(so, Path(dst, "skrnn", "nn", so.name))


def run_module(name, spec, repo, sample, max_children, timeout):
    with tempfile.TemporaryDirectory(prefix="skrnn-mutation-") as tmp:
        _copy_repo(repo, tmp)
        tests = [t for t in spec["tests"] if not t.startswith("tests/") or Path(tmp, t).exists()]
        lines = "\n    ".join(tests + ["-x"])
        paths = spec.get("paths") or [spec["path"]]  # a job split over several files
        mutate = "\n    ".join(paths)
        Path(tmp, "setup.cfg").write_text(
            "[mutmut]\nsource_paths = skrnn\n"
            f"only_mutate =\n    {mutate}\n"
            f"pytest_add_cli_args_test_selection =\n    {lines}\n"
            "pytest_add_cli_args = -p no:cacheprovider\n"
            "use_git_change_detection = false\n"
        )
        prefixes = spec.get("functions") or [p[:-3].replace("/", ".") + ".x" for p in paths]
        patterns = [f"{p}*__mutmut_*{SAMPLES[sample]}" if SAMPLES[sample] else f"{p}*__mutmut_*"
                    for p in prefixes]
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        env["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp}/mlflow.db"
        t0 = time.perf_counter()
        # its own process group, so that a timeout also ends mutmut's forked workers
        proc = subprocess.Popen([str(MUTMUT), "run", "--max-children", str(max_children),
                                 *patterns], cwd=tmp, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, start_new_session=True)
        try:
            log, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:  # what ran is in the meta file; the rest is "not checked"
            os.killpg(proc.pid, signal.SIGTERM)
            log, _ = proc.communicate()
        seconds = time.perf_counter() - t0
        codes = {}
        for path in paths:
            meta = Path(tmp, "mutants", path + ".meta")
            if not meta.exists():
                raise RuntimeError(f"mutmut failed for {name}:\n{log[-3000:]}")
            codes.update(json.loads(meta.read_text())["exit_code_by_key"])
        chosen = {k: v for k, v in codes.items() if any(fnmatch.fnmatch(k, p) for p in patterns)}
        status = {k: status_by_exit_code[v] for k, v in chosen.items()}
        survivors = sorted(k for k, s in status.items() if s == "survived")
        diffs = {}
        for k in survivors:
            shown = subprocess.run([str(MUTMUT), "show", k], check=False, cwd=tmp, env=env,
                                   capture_output=True, text=True).stdout
            diffs[k] = "\n".join(
                line for line in shown.splitlines()
                if line.startswith(("+", "-")) and not line.startswith(("+++", "---")))
        return {"name": name, "status": status, "survivors": survivors, "diffs": diffs,
                    "seconds": seconds, "tests": " ".join(tests), "total": len(codes)}


def summarize(result):
    counts = {}
    for s in result["status"].values():
        counts[s] = counts.get(s, 0) + 1
    killed = counts.get("killed", 0) + counts.get("timeout", 0)
    survived = counts.get("survived", 0)
    score = 100.0 * killed / (killed + survived) if killed + survived else float("nan")
    return counts, killed, survived, score


def main(argv=None):
    global status_by_exit_code
    from mutmut.stats import status_by_exit_code

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modules", nargs="*", default=list(MODULES),
                        help="module keys (substring match): " + ", ".join(MODULES))
    parser.add_argument("--sample", choices=list(SAMPLES), default="fifth")
    parser.add_argument("--repo", default=str(ROOT), help="checkout to test (default: this one)")
    parser.add_argument("--max-children", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per module")
    parser.add_argument("--out", help="write the Markdown report here")
    args = parser.parse_args(argv)
    chosen = [k for k in MODULES if any(m in k for m in args.modules)]
    rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], check=False, cwd=args.repo,
                         capture_output=True, text=True).stdout.strip()
    out = [f"# Mutation testing, {datetime.date.today()}", "",
           (f"mutmut 3.8.1, Python {sys.version.split()[0]}, checkout `{args.repo}` at {rev} "
            f"(plus its uncommitted changes), sample `{args.sample}`."), "",
           ("| module | mutants sampled | killed | survived | no tests | not run (time cap) "
           "| score | seconds |"),
           "|---|---|---|---|---|---|---|---|"]
    details = []
    for key in chosen:
        res = run_module(key, MODULES[key], args.repo, args.sample, args.max_children,
                         args.timeout)
        counts, killed, survived, score = summarize(res)
        row = (f"| {key} | {len(res['status'])} of {res['total']} | {killed} | {survived} | "
               f"{counts.get('no tests', 0)} | {counts.get('not checked', 0)} | {score:.1f}% | "
               f"{res['seconds']:.0f} |")
        print(row, flush=True)
        out.append(row)
        details += ["", f"## {key}", "", f"Tests: `{res['tests']}`", ""]
        other = {s: n for s, n in counts.items() if s not in ("killed", "survived", "no tests")}
        if other:
            details += [f"Other outcomes: {other}", ""]
        for k in res["survivors"]:
            details += [f"- survived `{k.split('.')[-1]}`", "", "  ```diff",
                        *("  " + line for line in res["diffs"][k].splitlines()), "  ```"]
        if args.out:  # after each module, so that a long run shows what it has
            Path(args.out).write_text("\n".join(out + details) + "\n")
    if not args.out:
        print("\n".join(out + details))


if __name__ == "__main__":
    main()
