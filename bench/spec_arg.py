"""``--spec conv32,res64``: an architecture written on the command line of a benchmark."""

from __future__ import annotations

from typing import Any


def parse_spec(text: str) -> Any:
    """A comma list of ``conv<W>`` (standard block) / ``res<W>`` (residual block)."""
    from rachel.core.search_space import ArchitectureSpec, BlockType, Layer

    return ArchitectureSpec(
        tuple(
            Layer(
                BlockType.RESIDUAL if t.startswith("res") else BlockType.STANDARD,
                int(t.lstrip("convres")),
            )
            for t in text.split(",")
        )
    )
