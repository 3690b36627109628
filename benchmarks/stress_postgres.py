"""Stress distributed tuning on PostgreSQL: N workers x M trials, K of them SIGKILLed.

Starts a throwaway PostgreSQL server on 127.0.0.1 (``tests/postgres_server.py``; or
uses ``--url``), creates one study of ``N * M`` trials, and starts N worker
processes running :func:`skrnn.tuning.tune` on it with heartbeats and failed-trial
retry. Each trial sleeps ``--slow`` seconds (a pipeline step) and fits a small GRU.
With ``--kill K``, K workers are killed with SIGKILL, each in the middle of a
trial, once ``--kill-at`` of the study is done. At the end it prints::

    completed  trials COMPLETE (or PRUNED)
    failed     trials FAIL (the killed ones, marked by a survivor's heartbeat check)
    retried    failed trials whose parameters were run again (RetryFailedTrialCallback)
    lost       trials whose work was neither completed nor retried, plus trials left
               RUNNING or WAITING -- must be 0

and exits with status 1 when anything was lost or a surviving worker failed.

    python benchmarks/stress_postgres.py --workers 4 --trials 5 --kill 1

Everything runs on this machine: the server listens on loopback only, the run is
bounded by ``--timeout`` and stops by itself.
"""

import argparse
import datetime
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve()
N_PARAMS = 2


def worker_main(url, name, n_trials, seed, slow, heartbeat, max_retry):
    import warnings

    import numpy as np
    import optuna
    import pandas as pd
    from sklearn.base import BaseEstimator, TransformerMixin
    from sklearn.pipeline import make_pipeline

    from skrnn import GRURegressor, LagFeatures
    from skrnn.tuning import TimeHoldout, tune

    warnings.simplefilter("ignore")
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    class Sleep(TransformerMixin, BaseEstimator):
        def fit(self, X, y=None):
            time.sleep(slow)
            return self

        def transform(self, X):
            return X

    rng = np.random.RandomState(0)
    t = np.arange(300)
    df = pd.DataFrame({"value": 10 + 3 * np.sin(2 * np.pi * t / 7)
                       + rng.normal(scale=0.5, size=300)})
    pipe = make_pipeline(Sleep(), LagFeatures(lags=5, fill_value="edge"),
                         GRURegressor(units=4, max_iter=3, random_state=0))
    space = {"gruregressor__units": optuna.distributions.IntDistribution(2, 30),
             "gruregressor__learning_rate_init":
                 optuna.distributions.FloatDistribution(1e-3, 1e-1, log=True)}
    tune(pipe, df[["value"]], df["value"], search_space=space, cv=TimeHoldout(0.25),
         study_name=name, storage=url, n_trials=n_trials, seed=seed, refit=False,
         heartbeat_interval=heartbeat, max_retry=max_retry)


def start_worker(args, url, name, n_trials, seed):
    cmd = [sys.executable, str(HERE), "--worker", url, name, str(n_trials), str(seed),
           str(args.slow), str(args.heartbeat), str(args.max_retry)]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def retry_of(trial):
    """The number of the original failed trial that ``trial`` retries, or None."""
    return trial.system_attrs.get("failed_trial")


def account(trials):
    """Counts for the table (see the module docstring).

    A piece of work is an original trial with its retries (Optuna's retry keeps the
    original number in ``system_attrs["failed_trial"]``): it is lost when none of
    them completed and one of them failed or was left RUNNING/WAITING.
    """
    done = {"COMPLETE", "PRUNED"}
    chains = {}  # original trial number -> states of it and of its retries
    for t in trials:
        origin = retry_of(t) if retry_of(t) is not None else t.number
        chains.setdefault(origin, []).append(t.state.name)
    retried_numbers = {t.system_attrs["retry_history"][-1] for t in trials
                       if t.system_attrs.get("retry_history")}
    failed = [t for t in trials if t.state.name == "FAIL"]
    left = [t for t in trials if t.state.name in ("RUNNING", "WAITING")]
    lost = [origin for origin, states in chains.items()
            if not done & set(states) and {"FAIL", "RUNNING", "WAITING"} & set(states)]
    return {
        "completed": sum(t.state.name == "COMPLETE" for t in trials),
        "pruned": sum(t.state.name == "PRUNED" for t in trials),
        "failed": len(failed),
        "retried": sum(t.number in retried_numbers for t in failed),
        "retries completed": sum(t.state.name in done for t in trials if retry_of(t) is not None),
        "left running/waiting": len(left),
        "lost": len(lost),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", "-n", type=int, default=4, help="worker processes (N)")
    parser.add_argument("--trials", "-m", type=int, default=5,
                        help="trials per worker (M): the study runs N*M")
    parser.add_argument("--kill", "-k", type=int, default=1,
                        help="workers to SIGKILL in the middle of a trial (K < N)")
    parser.add_argument("--kill-at", type=float, default=0.3,
                        help="kill once this fraction of the study is complete")
    parser.add_argument("--slow", type=float, default=1.0, help="seconds each trial sleeps")
    parser.add_argument("--heartbeat", type=int, default=1,
                        help="heartbeat interval, s (grace period: twice that)")
    parser.add_argument("--max-retry", type=int, default=2)
    parser.add_argument("--url", help="an existing PostgreSQL database URL (default: start "
                        "a throwaway server on 127.0.0.1)")
    parser.add_argument("--timeout", type=float, default=600, help="bound on the whole run, s")
    args = parser.parse_args(argv)
    if not 0 <= args.kill < args.workers:
        parser.error("--kill must be at least 0 and less than --workers")

    import optuna

    from skrnn.tuning import create_study, make_storage

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    server = None
    if args.url:
        url = args.url
    else:
        sys.path.insert(0, str(HERE.parents[1] / "tests"))
        from postgres_server import PostgresServer

        server = PostgresServer.start()
        url = server.create_database("stress")
        print(f"PostgreSQL {server.version} ({server.source}) on 127.0.0.1:{server.port}")
    procs = []
    try:
        name = f"stress-{os.getpid()}"
        n_total = args.workers * args.trials
        create_study(name, url)
        study = optuna.load_study(study_name=name, storage=make_storage(url))
        start = time.monotonic()
        procs = [start_worker(args, url, name, n_total, seed)
                 for seed in range(1, args.workers + 1)]
        ids = {f"{socket.gethostname()}:{p.pid}": p for p in procs}
        victims, snapshot = kill_some(args, study, procs, ids, n_total, start)
        outputs = {}
        for p in procs:
            if p in victims:
                continue
            try:
                outputs[p.pid] = p.communicate(timeout=max(args.timeout
                                                           - (time.monotonic() - start), 1))[0]
            except subprocess.TimeoutExpired:
                p.kill()
                outputs[p.pid] = p.communicate()[0]
        elapsed = time.monotonic() - start
        trials = study.get_trials(deepcopy=False)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        if server is not None:
            server.stop()

    counts = account(trials)
    kept = sum(1 for n, v in snapshot.items()
               if trials[n].state.name == "COMPLETE" and trials[n].value == v)
    survivors_ok = all(p.returncode == 0 for p in procs if p not in victims)
    rows = [
        ("workers x trials", f"{args.workers} x {args.trials} = {n_total}"),
        ("workers killed (SIGKILL mid-trial)", str(len(victims))),
        ("trials created", str(len(trials))),
        ("completed", str(counts["completed"] + counts["pruned"])),
        ("failed", str(counts["failed"])),
        ("retried", str(counts["retried"])),
        ("retries completed", str(counts["retries completed"])),
        ("left RUNNING/WAITING", str(counts["left running/waiting"])),
        ("lost (must be 0)", str(counts["lost"])),
        ("killed workers' completed trials kept", f"{kept}/{len(snapshot)}"),
        ("surviving workers exited 0", "yes" if survivors_ok else "NO"),
        ("wall time", f"{elapsed:.1f} s ({len(trials) / elapsed:.2f} trials/s)"),
    ]
    width = max(len(k) for k, _ in rows)
    print("-" * (width + 24))
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    print("-" * (width + 24))
    if not survivors_ok:
        for pid, out in outputs.items():
            print(f"--- worker {pid}:\n{out[-3000:]}")
    ok = counts["lost"] == 0 and survivors_ok and kept == len(snapshot)
    if counts["completed"] + counts["pruned"] < n_total:
        ok = False
        print(f"the study did not reach its {n_total} trials")
    return 0 if ok else 1


def kill_some(args, study, procs, ids, n_total, start):
    """SIGKILL ``args.kill`` workers, each inside the sleep of a fresh trial.

    Returns the killed processes and {trial number: value} of the trials they had
    completed before being killed.
    """
    victims, snapshot = [], {}
    if not args.kill:
        return victims, snapshot
    candidates = list(ids)
    full_before, previous = set(), None
    while len(victims) < args.kill:
        if time.monotonic() - start > args.timeout:
            raise TimeoutError("workers did not reach the kill point in time")
        if all(p.poll() is not None for p in procs):
            break
        polled = time.monotonic()
        trials = study.get_trials(deepcopy=False)
        complete = sum(t.state.name == "COMPLETE" for t in trials)
        full = {(t.user_attrs.get("worker"), t.number) for t in trials
                if t.state.name == "RUNNING" and len(t.params) == N_PARAMS}
        fresh = previous is not None and polled - previous < args.slow / 2
        if fresh and complete >= args.kill_at * n_total:
            for worker, number in sorted(full - full_before):
                if worker in candidates and ids[worker].poll() is None:
                    proc = ids[worker]
                    proc.send_signal(signal.SIGKILL)
                    proc.wait()
                    victims.append(proc)
                    candidates.remove(worker)
                    done = {t.number: t.value for t in study.get_trials(deepcopy=False)
                            if t.user_attrs.get("worker") == worker
                            and t.state.name == "COMPLETE"}
                    snapshot.update(done)
                    print(f"{datetime.datetime.now():%H:%M:%S} killed worker {worker} in "
                          f"trial {number} ({len(done)} trials completed by it)")
                    break
        full_before, previous = full, polled
        time.sleep(0.05)
    return victims, snapshot


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        a = sys.argv[2:]
        worker_main(a[0], a[1], int(a[2]), int(a[3]), float(a[4]), int(a[5]), int(a[6]))
    else:
        sys.exit(main())
