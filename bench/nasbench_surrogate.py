"""Fit the XGBoost surrogate on the real NAS-Bench-101 cells and score it on a held-out split.

Usage::

    python bench/nasbench_surrogate.py [--table PATH] [--seed 0] [--test-fraction 0.2]
        [--n-jobs 1] [--model PATH] [--output bench/results/nasbench_surrogate.json]

The split is a seeded random split of the cells that have a real 108-epoch validation
accuracy (20,268 in the shared table); the output states it.  Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

from table import print_key_values  # bench/table.py (the script's folder is on sys.path)

REPO = Path(__file__).resolve().parents[1]
DEFAULT_TABLE = os.environ.get(
    "RACHEL_NASBENCH101_TABLE",
    str(REPO.parent / "shared" / "data" / "nasbench101" / "nasbench101_108.parquet"),
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", default=DEFAULT_TABLE)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--test-fraction", type=float, default=0.2)
    parser.add_argument(
        "--n-jobs",
        type=int,
        default=1,
        help="XGBoost threads (1 = deterministic and robust on shared CPUs)",
    )
    parser.add_argument("--max-cells", type=int, default=None)
    parser.add_argument("--models", type=int, default=1, help="models in the ensemble")
    parser.add_argument(
        "--penalty", type=float, default=0.0, help="score = ensemble mean - penalty x ensemble std"
    )
    parser.add_argument("--model", default=None, help="also save the fitted model here")
    parser.add_argument(
        "--output", default=str(REPO / "bench" / "results" / "nasbench_surrogate.json")
    )
    args = parser.parse_args(argv)

    from rachel.core import storage
    from rachel.core.nasbench.estimators import DEFAULT_XGB_PARAMS, evaluate_surrogate
    from rachel.core.nasbench.table import BenchTable

    t0 = time.perf_counter()
    bench = BenchTable.load(args.table)
    load_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    model, report = evaluate_surrogate(
        bench,
        test_fraction=args.test_fraction,
        seed=args.seed,
        max_cells=args.max_cells,
        n_jobs=args.n_jobs,
        n_models=args.models,
        penalty=args.penalty,
    )
    total_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    full = model.accuracy_array(bench.hashes)
    predict_all_s = time.perf_counter() - t0
    if args.model:
        model.save(args.model)

    result = {
        "benchmark": "nasbench_surrogate",
        "table": args.table,
        "split": report.split,
        "n_train": report.n_train,
        "n_test": report.n_test,
        "kendall_tau": report.kendall_tau,
        "spearman_rho": report.spearman_rho,
        "rmse": report.rmse,
        "rmse_constant_predictor": report.rmse_constant,
        "median_abs_error": report.median_abs_error,
        "fit_seconds": report.fit_seconds,
        "fit_and_score_seconds": total_s,
        "predict_all_cells_seconds": predict_all_s,
        "cells_predicted": int((full == full).sum()),
        "max_prediction_all_cells": float(full.max()),
        "bounds": list(model.bounds),
        "n_models": args.models,
        "penalty": args.penalty,
        "top_k": report.top_k,
        "disagreement": report.disagreement,
        "table_load_seconds": load_s,
        "xgb_params": DEFAULT_XGB_PARAMS,
        "n_jobs": args.n_jobs,
        "seed": args.seed,
        "python": sys.version.split()[0],
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
    }
    rows = (
        [
            ("split", report.split),
            ("train / test cells", f"{report.n_train} / {report.n_test}"),
            ("Kendall tau (held-out)", f"{report.kendall_tau:.4f}"),
            ("Spearman rho (held-out)", f"{report.spearman_rho:.4f}"),
            ("RMSE (held-out)", f"{report.rmse:.5f}  ({100 * report.rmse:.2f} accuracy points)"),
            ("RMSE constant predictor", f"{report.rmse_constant:.5f}"),
            ("median |error| (held-out)", f"{report.median_abs_error:.5f}"),
            ("fit time", f"{report.fit_seconds:.2f} s  (n_jobs={args.n_jobs})"),
            ("predict all 423,624 cells", f"{predict_all_s:.2f} s"),
            ("max prediction over all cells", f"{full.max():.4f} (bounds {model.bounds})"),
        ]
        + [
            (
                f"top-{k}: true mean of predicted / oracle",
                f"{v['true_mean_of_predicted_top']:.4f}"
                f" / {v['oracle_mean_of_top']:.4f} (best {v['true_best_of_predicted_top']:.4f} / "
                f"{v['oracle_best']:.4f})",
            )
            for k, v in report.top_k.items()
        ]
        + [(f"ensemble {k}", f"{v:.4f}") for k, v in report.disagreement.items()]
    )
    print_key_values(rows, "metric")
    storage.write_json(args.output, result)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
