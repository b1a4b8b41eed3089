"""``rachel search``: the whole RACHEL search in-process."""

from __future__ import annotations

import argparse
from typing import Any

from rachel.cli.options import add_config_arguments, config_from_args
from rachel.cli.progress import printer


def register(sub: Any) -> None:
    p = sub.add_parser(
        "search",
        help="run the RACHEL search in this process",
        description="Run the RACHEL search in this process and write the "
        "ensemble, metrics.json, a report and a search log under --output.",
    )
    add_config_arguments(p)
    p.add_argument("--output", required=True, help="output folder")
    p.add_argument("--quiet", action="store_true", help="print only the final summary")
    p.add_argument(
        "--plan",
        metavar="FILE",
        help="follow the decisions of a recorded plan.json (reproduces that run exactly)",
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)  # validated before any data is read
    from rachel.core import storage
    from rachel.core.search import run_search

    plan = storage.read_json(args.plan) if args.plan else None
    metrics = run_search(
        config, args.output, on_event=None if args.quiet else printer(), plan=plan
    )
    print(f"model:   {args.output}/final/model.keras (SavedModel: {args.output}/final/saved_model)")
    print(f"metrics: {args.output}/final/metrics.json  report: {args.output}/final/report.md")
    if args.quiet:
        print(f"test_accuracy {metrics['test_accuracy']:.4f}")
    return 0
