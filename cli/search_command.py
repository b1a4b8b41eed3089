"""``rachel search``: the whole RACHEL search in-process.

With ``--registry`` the run ends at the promotion gate (:mod:`rachel.core.registry`): the
model replaces the registry's champion only if it beats it on the same test split.  Exit
code 0 for both outcomes, or 6 for a kept champion with ``--fail-if-not-promoted`` (so a
weekly CI job can stop before deploying); ``--warm-start`` starts the controller from the
champion's checkpoint instead of from scratch.
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
import time
from pathlib import Path
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
    p.add_argument(
        "--output",
        required=True,
        help="output folder or gs://bucket/prefix; an unfinished run of the same settings "
        "there is resumed",
    )
    p.add_argument(
        "--restart",
        action="store_true",
        help="discard the unfinished (or finished) run in --output and start over",
    )
    p.add_argument("--quiet", action="store_true", help="print only the final summary")
    p.add_argument(
        "--plan",
        metavar="FILE",
        help="follow the decisions of a recorded plan.json (reproduces that run exactly)",
    )
    _add_registry_arguments(p)
    p.set_defaults(handler=run)


def _add_registry_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("champion registry (recurring runs)")
    g.add_argument(
        "--registry",
        metavar="URI",
        help="champion registry (folder, file://PATH or gs://BUCKET/PREFIX): after the "
        "search, publish the model there if it beats the champion on the same test split",
    )
    g.add_argument(
        "--promotion-margin",
        type=float,
        default=0.0,
        metavar="ACC",
        help="test-accuracy gain needed to replace the champion (default: %(default)s = any "
        "gain; a tie always keeps the champion)",
    )
    g.add_argument(
        "--fail-if-not-promoted",
        action="store_true",
        help="exit with code 6 when the champion is kept (default: exit 0 for both outcomes)",
    )
    g.add_argument(
        "--warm-start",
        action="store_true",
        help="start the controller from the champion's checkpoint (needs --registry; with "
        "no champion yet, from scratch, as recorded in promotion.json)",
    )


def _check_registry_arguments(args: argparse.Namespace) -> None:
    from rachel.core.errors import ConfigError
    from rachel.core.registry import check_margin

    check_margin(args.promotion_margin)
    if args.registry:
        return
    needs = [
        flag
        for flag, used in (
            ("--warm-start", args.warm_start),
            ("--fail-if-not-promoted", args.fail_if_not_promoted),
            ("--promotion-margin", args.promotion_margin != 0.0),
        )
        if used
    ]
    if needs:
        raise ConfigError(
            f"{', '.join(needs)} needs --registry",
            "pass --registry URI (a folder, file://PATH or gs://BUCKET/PREFIX)",
        )


def search_run_info(config: Any, output: str, warm_start: dict[str, Any] | None) -> dict[str, Any]:
    """What the registry records about this run (configuration hash, seed, warm start)."""
    from rachel.core import planner

    return {
        "runner": "rachel search",
        "output": str(output),
        "config_fingerprint": planner.plan_summary(config)["config_fingerprint"],
        "dataset": config.dataset,
        "seed": config.seed,
        "warm_start": warm_start,
    }


def promotion_gate(
    output: str | Path,
    registry_uri: str,
    margin: float = 0.0,
    *,
    fail_if_not_promoted: bool = False,
    run_info: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The gate after a finished search: decide, publish on promotion, print the decision.

    Returns the promotion record; raises :class:`~rachel.core.errors.NotPromotedError`
    (exit code 6) for a kept champion when ``fail_if_not_promoted``.
    """
    from rachel.core import registry
    from rachel.core.errors import NotPromotedError

    record = registry.promote_search_output(output, registry_uri, margin, run_info)
    print(registry.describe(record))
    print(f"record:  {output}/final/promotion.json  summary: {output}/final/promotion.md")
    if fail_if_not_promoted and not record["promoted"]:
        raise NotPromotedError(
            f"the new model was not promoted; champion {record['champion_version']} kept "
            f"({record['reason']})",
            "expected with --fail-if-not-promoted (exit code 6); drop that flag to exit 0 "
            "when the champion is kept",
        )
    return record


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)  # validated before any data is read
    _check_registry_arguments(args)
    from rachel.core import registry, steps, storage
    from rachel.core.search import run_search

    plan = storage.read_json(args.plan) if args.plan else None
    warm: dict[str, Any] | None = None
    with contextlib.ExitStack() as stack:
        initial: Path | None = None
        if args.warm_start and registry.champion(args.registry) is None:
            # The first run of a schedule: nothing to start from yet, and that is not an error.
            warm = {"registry": args.registry, "version": None}
            print(
                f"warm start: {args.registry} has no champion yet; the controller starts "
                "from scratch"
            )
        elif args.warm_start:  # checked against this config before any training
            tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="rachel-warm-start-"))
            initial, pointer = registry.champion_controller(
                args.registry, Path(tmp) / "controller", steps.controller_settings(config)
            )
            warm = {
                "registry": args.registry,
                "version": pointer["version"],
                "test_accuracy": pointer["test_accuracy"],
            }
            print(
                f"warm start: controller of champion {pointer['version']} "
                f"(test_accuracy {pointer['test_accuracy']:.4f}) from {args.registry}"
            )
        elif args.registry:
            registry.champion(args.registry)  # an unusable registry fails before the search
        from rachel.core import run_clock

        metrics = run_search(
            config,
            args.output,
            on_event=None if args.quiet else printer(),
            plan=plan,
            restart=args.restart,
            initial_controller=initial,
            started_at=time.time() - run_clock.process_age(),  # the budget is the command's
        )
    print(f"model:   {args.output}/final/model.keras (SavedModel: {args.output}/final/saved_model)")
    print(f"metrics: {args.output}/final/metrics.json  report: {args.output}/final/report.md")
    if args.quiet:
        print(f"test_accuracy {metrics['test_accuracy']:.4f}")
    if args.registry:
        promotion_gate(
            args.output,
            args.registry,
            args.promotion_margin,
            fail_if_not_promoted=args.fail_if_not_promoted,
            run_info=search_run_info(config, args.output, warm),
        )
    return 0
