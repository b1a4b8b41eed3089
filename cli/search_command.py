"""``rachel search``: the whole RACHEL search in-process."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from rachel.cli.options import add_config_arguments, config_from_args


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
    p.set_defaults(handler=run)


def _progress(event: dict[str, Any]) -> None:
    kind = event["event"]
    t = f"[{event['t']:7.1f}s]"
    if kind == "data":
        print(
            f"{t} data {event['dataset']}: train {event['train']}, val {event['val']}, "
            f"test {event['test']}, {event['num_classes']} classes, seed {event['seed']}"
        )
    elif kind == "candidate":
        if event["status"] == "ok":
            print(
                f"{t} iteration {event['iteration']} candidate {event['candidate_id']}: "
                f"val_acc {event['val_accuracy']:.4f} val_loss {event['val_loss']:.4f} "
                f"params {event['params']:,} epochs {event['epochs_run']}"
            )
        else:
            print(
                f"{t} iteration {event['iteration']} candidate {event['candidate_id']}: "
                f"FAILED ({event['error']})"
            )
    elif kind == "iteration":
        rewards = ", ".join(
            f"{cid}={r:.4f}" if r is not None else f"{cid}=failed"
            for cid, r in event["rewards"].items()
        )
        print(f"{t} iteration {event['iteration']} rewards: {rewards}")
        print(
            f"{t} iteration {event['iteration']} {event['decision']}; "
            f"ensemble = {len(event['members'])} member(s)"
        )
    elif kind == "final":
        print(
            f"{t} done: test_accuracy {event['test_accuracy']:.4f}, macro_f1 "
            f"{event['macro_f1']:.4f}, params {event['params']:,}, "
            f"safety-net activations {event['safety_net_activations']}"
        )
    sys.stdout.flush()


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)  # validated before any data is read
    from rachel.core.search import run_search

    metrics = run_search(config, args.output, on_event=None if args.quiet else _progress)
    print(f"model:   {args.output}/final/model.keras (SavedModel: {args.output}/final/saved_model)")
    print(f"metrics: {args.output}/final/metrics.json  report: {args.output}/final/report.md")
    if args.quiet:
        print(f"test_accuracy {metrics['test_accuracy']:.4f}")
    return 0
