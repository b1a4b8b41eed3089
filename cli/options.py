"""Search-configuration options shared by ``rachel search`` and the pipeline commands."""

from __future__ import annotations

import argparse
import dataclasses
import json
from typing import Any

SIZE_OPTIONS = ("train_size", "val_size", "test_size")


def add_config_arguments(parser: argparse.ArgumentParser, *, default_budget: str = "smoke") -> None:
    g = parser.add_argument_group("search configuration")
    g.add_argument(
        "--dataset",
        default="fashion_mnist",
        help="built-in name (fashion_mnist, mnist, cifar10, svhn, cifar10_cat_dog, ...) "
        "or a path / gs:// URI to a user .npz or .parquet file",
    )
    g.add_argument("--data-dir", help="folder or gs:// prefix holding the built-in dataset's files")
    g.add_argument(
        "--budget",
        default=default_budget,
        choices=("smoke", "small", "medium", "paper"),
        help="preset (default: %(default)s): smoke, small and medium are wall-clock targets "
        "of about 2, 10 and 30 minutes on 2 CPU cores; 'paper' = the paper's settings",
    )
    g.add_argument("--seed", type=int, help="seed of the whole run (recorded in the artifacts)")
    for name in SIZE_OPTIONS:
        g.add_argument(
            f"--{name.replace('_', '-')}",
            type=int,
            dest=name,
            help=f"examples in the {name.split('_')[0]} split",
        )
    g.add_argument("--iterations", type=int)
    g.add_argument("--candidates", type=int, help="candidates per iteration")
    g.add_argument("--max-new-layers", type=int, dest="max_new_layers")
    g.add_argument("--max-width", type=int, dest="max_width", help="width cap (16..256)")
    g.add_argument("--epochs", type=int, help="max training epochs per candidate")
    g.add_argument("--batch-size", type=int, dest="batch_size")
    g.add_argument("--patience", type=int, help="early-stopping patience")
    g.add_argument(
        "--time-budget",
        type=float,
        dest="time_budget_seconds",
        metavar="SECONDS",
        help="wall-clock budget of the whole run: the planner fits iterations and "
        "candidates into it from the candidate times it measures (overrides the preset's; "
        "0 = no budget)",
    )
    g.add_argument(
        "--parallel-candidates",
        type=int,
        dest="parallel_candidates",
        help="candidates trained at once (rachel search: worker processes)",
    )
    g.add_argument(
        "--controller", choices=("rl", "random"), help="'random' = the random-search ablation"
    )
    g.add_argument(
        "--no-ensemble", action="store_true", help="ablation: keep only the best single model"
    )
    for name in ("mixed-precision", "xla", "multi-gpu"):
        g.add_argument(
            f"--{name}",
            choices=("auto", "on", "off"),
            dest=name.replace("-", "_"),
            help="GPU-only option (auto = on when a GPU is present)",
        )
    g.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override any other setting, e.g. --set ensemble_epochs=20 (repeatable)",
    )


def _parse_value(raw: str) -> Any:
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw


def config_from_args(args: argparse.Namespace) -> Any:
    """A validated :class:`SearchConfig` from the options (raises ConfigError)."""
    from rachel.core.config import SearchConfig, budget_config
    from rachel.core.errors import ConfigError

    fields = {f.name for f in dataclasses.fields(SearchConfig)}
    overrides: dict[str, Any] = {
        name: getattr(args, name) for name in fields if getattr(args, name, None) is not None
    }
    if getattr(args, "no_ensemble", False):
        overrides["ensemble"] = False
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(
                f"--set {item!r} is not KEY=VALUE", "write e.g. --set ensemble_epochs=20"
            )
        overrides[key.strip()] = _parse_value(value)
    no_budget = overrides.get("time_budget_seconds") == 0  # --time-budget 0: no budget
    if no_budget:
        del overrides["time_budget_seconds"]
    config = budget_config(args.budget, **overrides)
    return config.replace(time_budget_seconds=None) if no_budget else config
