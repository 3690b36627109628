"""Two builds of the compiled time loops against each other, in one process.

Timings on a shared machine drift by 10-30% from one process to the next, more than
most kernel changes gain, so comparing two runs of ``bench_training.py`` cannot tell
a 5% improvement from noise. This script loads two builds of ``skrnn.nn._fastrnn``
(the ``.so`` files: copy the one built from the old source in ``skrnn/nn/csrc/``
aside before rebuilding) into the same process and times their forward and backward
loops alternately, many rounds, keeping the best of each: both see the same machine
state.

Example::

    cp skrnn/nn/_fastrnn*.so /tmp/before.so          # build of the old source
    pip install -e .                                 # rebuild with the change
    python benchmarks/ab_builds.py /tmp/before.so skrnn/nn/_fastrnn*.so \\
        --cell lstm --configs 14,256,64 50,10000,64 --threads 1

A config is ``T,B,H``; the table gives milliseconds per call of the forward loop
storing its activations (training), without them (``predict``), and the backward
loop, and the ratio of the second build's time to the first's.
"""

import argparse
import importlib.machinery
import importlib.util
import os
import sys
import time

import numpy as np

from skrnn.nn._engine import Cell, block_size

GATES = {"rnn": 1, "lstm": 4, "gru": 3}
# the builds are called by position (an old build predates the keyword wrappers of
# skrnn.nn._engine), with the engine's cell codes
CELL_ID = {"rnn": Cell.RNN, "lstm": Cell.LSTM, "gru": Cell.GRU}


def load(path):
    """A build of the extension module from its file (same init name, own copy)."""
    loader = importlib.machinery.ExtensionFileLoader("_fastrnn", path)
    spec = importlib.util.spec_from_file_location("_fastrnn", path, loader=loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


class Case:
    """Arrays of one forward + backward call, float32, one feature per step."""

    def __init__(self, cell, T, B, H, threads, seed=0):
        rng = np.random.RandomState(seed)
        f32 = np.float32
        G = GATES[cell] * H
        self.cell, self.T, self.B, self.H, self.threads = cell, T, B, H, threads
        self.X = rng.normal(size=(T, B, 1)).astype(f32)
        self.Wih = (rng.normal(size=(1, G)) * 0.3).astype(f32)
        self.b = np.zeros(G, f32)
        self.Whh = (rng.normal(size=(H, G)) / np.sqrt(H)).astype(f32)
        self.WhhT = np.ascontiguousarray(self.Whh.T)
        self.bhn = np.zeros(H, f32) if cell == "gru" else None
        self.dlast = rng.normal(size=(B, H)).astype(f32)
        self.grads = [np.empty((1, G), f32), np.empty((H, G), f32), np.empty(G, f32),
                      np.empty(H, f32) if cell == "gru" else None]
        self.blk = block_size(B)  # the engine's choice for this batch size

    def buffers(self, store):
        """Training: every step kept; predict: only the last state (the loops keep
        the rest in their scratch; older builds, up to commit 1055e27, took two
        slots of Hs and Cs and one of TC and S instead, so predict times of such a
        build cannot be compared with this script)."""
        T, B, H, f32 = self.T, self.B, self.H, np.float32
        G = GATES[self.cell] * H
        if not store:
            return np.zeros((1, B, H), f32), None, None, None, None
        Hs = np.zeros((T + 1, B, H), f32)
        Cs = np.zeros((T + 1, B, H), f32) if self.cell == "lstm" else None
        TC = np.empty((T, B, H), f32) if self.cell == "lstm" else None
        Gt = np.empty((T, B, G), f32) if self.cell != "rnn" else None
        S = np.empty((T, B, H), f32) if self.cell == "gru" else None
        return Hs, Cs, TC, Gt, S

    def forward(self, mod, bufs, store):
        Hs, Cs, TC, Gt, S = bufs
        flag = self.cell == "gru"  # GRU: reset_after
        mod.forward(CELL_ID[self.cell], self.T, self.B, 1, self.H, self.X, self.Wih, self.b,
                    self.Whh, self.bhn, Hs, Cs, TC, Gt, S, None, flag, store, not store,
                    self.blk, self.threads)

    def backward(self, mod, bufs):
        Hs, Cs, TC, Gt, S = bufs
        flag = self.cell == "gru"
        mod.backward(CELL_ID[self.cell], self.T, self.B, 1, self.H, self.X, None, self.WhhT,
                     None, Hs, Cs, TC, Gt, S, None, None, self.dlast, None, *self.grads, flag,
                     self.blk, self.threads)


def best_times(case, mods, rounds):
    """Best seconds per call of each build: forward (store), forward (predict), backward."""
    T, B, H = case.T, case.B, case.H
    reps = max(3, int(3e9 / (T * B * H * GATES[case.cell] * H)))  # ~50 ms per timing
    out = {name: [np.inf, np.inf, np.inf] for name in mods}
    stored = case.buffers(True)
    ring = case.buffers(False)
    for _ in range(rounds):
        for name, mod in mods.items():
            jobs = [lambda mod=mod: case.forward(mod, stored, True),
                    lambda mod=mod: case.forward(mod, ring, False)]
            case.forward(mod, stored, True)  # fills the activations backward reads
            jobs.append(lambda mod=mod: case.backward(mod, stored))
            for k, job in enumerate(jobs):
                job()
                t = time.perf_counter()
                for _ in range(reps):
                    job()
                out[name][k] = min(out[name][k], (time.perf_counter() - t) / reps)
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("before", help="the first build (.so)")
    p.add_argument("after", help="the second build (.so)")
    p.add_argument("--cell", nargs="+", default=["lstm"], choices=sorted(GATES))
    p.add_argument("--configs", nargs="+", default=["14,256,64", "50,256,64", "50,10000,16"],
                   metavar="T,B,H")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--rounds", type=int, default=9)
    args = p.parse_args(argv)
    mods = {"before": load(os.path.abspath(args.before)),
            "after": load(os.path.abspath(args.after))}
    print(f"# A/B of two builds, {args.rounds} alternating rounds, best per call, "
          f"{args.threads} thread(s), float32\n")
    print(f"- before: {args.before}\n- after: {args.after}\n")
    print("| cell | T | B | H | fwd train before | after | ratio | predict before | after "
          "| ratio | backward before | after | ratio |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for cell in args.cell:
        for spec in args.configs:
            T, B, H = (int(v) for v in spec.split(","))
            res = best_times(Case(cell, T, B, H, args.threads), mods, args.rounds)
            cells = []
            for k in range(3):
                a, b = res["before"][k], res["after"][k]
                cells += [f"{a * 1e3:.3f}", f"{b * 1e3:.3f}", f"{b / a:.3f}"]
            print(f"| {cell} | {T} | {B} | {H} | " + " | ".join(cells) + " |")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
