"""Search-configuration options shared by ``rachel search`` and the pipeline commands."""

from __future__ import annotations

import argparse
import dataclasses
import json
from typing import Any


def add_config_arguments(parser: argparse.ArgumentParser, *, default_budget: str = "smoke") -> None:
    """``--budget``, one flag per setting (derived from its definition in
    :class:`~rachel.core.config.SearchConfig`: name, type, choices, help) and ``--set``."""
    from rachel.core.config import SearchConfig, setting_type

    g = parser.add_argument_group(
        "search configuration", "every setting of the preset can be overridden by its flag"
    )
    g.add_argument(
        "--budget",
        default=default_budget,
        choices=("smoke", "small", "medium", "paper"),
        help="preset (default: %(default)s): smoke, small and medium are wall-clock targets "
        "of about 2, 10 and 30 minutes on 2 CPU cores; 'paper' = the paper's settings",
    )
    for f in dataclasses.fields(SearchConfig):
        meta = f.metadata
        flag = meta["flag"] or f"--{f.name.replace('_', '-')}"
        kind = setting_type(f.name)
        if kind is bool:
            g.add_argument(
                flag,
                dest=f.name,
                action=argparse.BooleanOptionalAction,
                default=None,
                help=meta["help"],
            )
            continue
        g.add_argument(
            flag,
            dest=f.name,
            type=_typed(f.name, kind),
            default=None,
            choices=meta["choices"],
            help=meta["help"],
            metavar=None if meta["choices"] else kind.__name__.upper(),
        )
    g.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a setting by its name, e.g. --set ensemble_epochs=20 (repeatable)",
    )


def _typed(name: str, kind: type) -> Any:
    """An argparse type whose error is the configuration's one-line type error."""

    def convert(raw: str) -> Any:
        try:
            return kind(raw)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{name} must be {kind.__name__}, got {raw!r}"
            ) from None

    convert.__name__ = kind.__name__
    return convert


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
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(
                f"--set {item!r} is not KEY=VALUE", "write e.g. --set ensemble_epochs=20"
            )
        overrides[key.strip()] = _parse_value(value)
    budget = overrides.get("time_budget_seconds")
    no_budget = not isinstance(budget, bool) and budget == 0  # --time-budget 0: no budget
    if no_budget:
        del overrides["time_budget_seconds"]
    config = budget_config(args.budget, **overrides)
    return config.replace(time_budget_seconds=None) if no_budget else config
