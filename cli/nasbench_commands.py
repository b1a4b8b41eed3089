"""``rachel nasbench …``: the NAS-Bench-101 toolkit from the command line."""

from __future__ import annotations

import argparse
import json
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser("nasbench", help="NAS-Bench-101 tools: convert, surrogate, evaluate")
    nb = p.add_subparsers(dest="nasbench_command", metavar="TOOL", required=True)

    c = nb.add_parser("convert", help="official .tfrecord -> Parquet table (once, for fast loads)")
    c.add_argument("input", help="nasbench_only108.tfrecord or nasbench_full.tfrecord (path/gs://)")
    c.add_argument("output", help="the Parquet file to write (path/gs://)")
    c.set_defaults(handler=_convert)

    s = nb.add_parser("surrogate", help="fit the XGBoost surrogate; report held-out tau/rho/RMSE")
    s.add_argument("--table", help="Parquet table (default: the shared NAS-Bench-101 table)")
    s.add_argument("--test-fraction", type=float, default=0.2)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--output", help="write the report JSON here")
    s.set_defaults(handler=_surrogate)

    e = nb.add_parser("evaluate", help="run the baselines through the evaluation protocol")
    e.add_argument("--table", help="Parquet table (default: the shared NAS-Bench-101 table)")
    e.add_argument(
        "--estimator", default="auto", choices=("auto", "surrogate", "tabular", "real_subset"),
        help="auto: tabular when the table is complete, else the surrogate on the full graph",
    )
    e.add_argument("--report-metric", default="auto", choices=("auto", "validation", "test"))
    e.add_argument("--searchers", default="random_search,random_walk,local_search")
    e.add_argument("--k-sets", type=int, default=2, help="sets of initial states (paper: 5)")
    e.add_argument(
        "--m-states", type=int, default=100, help="initial states per set (paper: 10000)"
    )
    e.add_argument("--resamples", type=int, default=5000, help="bootstrap resamples")
    e.add_argument(
        "--max-vertices", type=int, default=7, help="<7 restricts the space (smoke runs)"
    )
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--output", required=True, help="folder for report.json, report.md, plots")
    e.set_defaults(handler=_evaluate)


def _convert(args: argparse.Namespace) -> int:
    from rachel.core.nasbench.table import convert_tfrecord_to_parquet

    summary = convert_tfrecord_to_parquet(args.input, args.output)
    print(
        f"wrote {args.output}: {summary.cells:,} cells from {summary.records:,} records "
        f"in {summary.seconds:.1f} s"
    )
    return 0


def _surrogate(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from rachel.core import storage
    from rachel.core.nasbench.estimators import evaluate_surrogate
    from rachel.core.nasbench.index import default_table_path
    from rachel.core.nasbench.table import BenchTable

    bench = BenchTable.load(args.table or str(default_table_path()))
    _, report = evaluate_surrogate(
        bench, test_fraction=args.test_fraction, seed=args.seed, n_jobs=1
    )
    data = asdict(report)
    print(json.dumps(data, indent=2, default=str))
    if args.output:
        storage.write_json(args.output, data)
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from rachel.core.nasbench.evaluation import ProtocolConfig
    from rachel.core.nasbench.experiment import ExperimentSettings, run_experiment

    settings = ExperimentSettings(
        table=args.table,
        estimator=args.estimator,
        searchers=tuple(s.strip() for s in args.searchers.split(",") if s.strip()),
        max_vertices=args.max_vertices,
        report_metric=args.report_metric,
        seed=args.seed,
    )
    protocol = ProtocolConfig(
        k_sets=args.k_sets, m_states=args.m_states, n_resamples=args.resamples
    )
    out = run_experiment(settings, protocol, args.output)
    print(
        f"{out['cells']:,} cells, estimator {out['estimator']} ({out['mode']} mode), "
        f"search {out['search_seconds']:.1f} s"
    )
    for note in out["notes"].values():
        print(f"note: {note}")
    print(f"report: {args.output}/report.md  ({', '.join(sorted(out['files']))})")
    return 0
