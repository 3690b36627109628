"""neuralforecast LSTM and GRU, one step ahead over a holdout: the peer rows of accuracy.py.

Run by ``benchmarks/accuracy.py --nf-python /tmp/nfvenv/bin/python`` in a separate
environment (neuralforecast and torch are never dependencies of skrnn)::

    python3.11 -m venv /tmp/nfvenv
    /tmp/nfvenv/bin/pip install torch==2.13.0   # first, so pip keeps the CPU build
    /tmp/nfvenv/bin/pip install neuralforecast

Input: a CSV in neuralforecast's long format (``unique_id, ds, y`` and the known-future
columns). Each model is trained once on the dates before the holdout (``refit=False``) with
neuralforecast's own ``standard`` scaler and the same input window as skrnn, then predicts
every holdout date one step ahead from the true history (``cross_validation`` with
``h=1, step_size=1, n_windows=<holdout length>``). Output: a CSV of the predictions and a
JSON of the wall times.
"""

import argparse
import json
import logging
import os
import time
import warnings


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True)
    p.add_argument("--out", required=True, help="prefix of the output files")
    p.add_argument("--input-size", type=int, required=True)
    p.add_argument("--n-windows", type=int, required=True)
    p.add_argument("--freq", required=True)
    p.add_argument("--futr-exog", default="", help="comma-separated known-future columns")
    p.add_argument("--max-steps", type=int, default=500)
    # one thread: on a shared 2-core machine, torch's second thread made each training
    # step about ten times slower (measured 4 s vs 0.3 s per step of the LSTM)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args()

    import pandas as pd
    import torch

    torch.set_num_threads(args.threads)
    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    logging.getLogger("lightning_fabric").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    from neuralforecast import NeuralForecast
    from neuralforecast.models import GRU, LSTM

    df = pd.read_csv(args.data, parse_dates=["ds"])
    futr = [c for c in args.futr_exog.split(",") if c]
    common = {"h": 1, "input_size": args.input_size, "futr_exog_list": futr or None,
              "scaler_type": "standard", "max_steps": args.max_steps, "random_seed": args.seed,
              "enable_progress_bar": False, "enable_model_summary": False, "logger": False,
              "enable_checkpointing": False, "accelerator": "cpu"}
    preds, times = None, {}
    for cls in (LSTM, GRU):
        nf = NeuralForecast(models=[cls(**common)], freq=args.freq)
        t0 = time.perf_counter()
        cv = nf.cross_validation(df=df, n_windows=args.n_windows, step_size=1, refit=False)
        times[cls.__name__] = time.perf_counter() - t0
        cv = cv[["unique_id", "ds", cls.__name__]]
        preds = cv if preds is None else preds.merge(cv, on=["unique_id", "ds"])
    preds.to_csv(args.out + "_pred.csv", index=False)
    with open(args.out + "_times.json", "w") as f:
        json.dump(times, f)
    print(json.dumps({"rows": len(preds), "times": times, "pid": os.getpid()}))


if __name__ == "__main__":
    main()
