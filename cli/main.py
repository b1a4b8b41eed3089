"""The ``rachel`` command line.

Each command group lives in its own module with a ``register(subparsers)`` function; this
file only assembles them and turns errors into one clear line and an exit code (see
:mod:`rachel.core.errors`).  Nothing here imports TensorFlow or kfp at start-up, so
``rachel --help`` is instant.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

COMMAND_MODULES = (
    "rachel.cli.search_command",
    "rachel.cli.pipeline_commands",
    "rachel.cli.nasbench_commands",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rachel",
        description="RACHEL neural architecture search: in-process, as a Kubeflow pipeline, "
        "and a NAS-Bench search-agent toolkit.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        # A command module that fails to import is a broken install: fail loudly, never
        # drop the command group silently.
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parser = build_parser()
    args = parser.parse_args(argv)
    from rachel.core.errors import RachelError

    try:
        return int(args.handler(args) or 0)
    except RachelError as err:
        print(f"rachel {args.command}: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print(f"rachel {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
