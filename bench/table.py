"""Printing helpers shared by the benchmark scripts (run as ``python bench/NAME.py``)."""

from __future__ import annotations

from collections.abc import Sequence


def print_key_values(rows: Sequence[tuple[str, str]], header: str = "measure") -> None:
    """A two-column ``name | value`` table."""
    width = max(len(k) for k, _ in rows)
    print(f"{header:<{width}} | value")
    print("-" * width + "-|-" + "-" * 40)
    for key, value in rows:
        print(f"{key:<{width}} | {value}")
