"""A JSON results file that benchmarks append to run by run, so a long benchmark can be
stopped and resumed across sessions: each finished run is written at once (atomically),
and a run whose key is already there is skipped."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rachel.core import storage


class ResultsFile:
    def __init__(self, path: str | Path, meta: dict[str, Any] | None = None) -> None:
        self.path = Path(path)
        data = json.loads(self.path.read_text()) if self.path.exists() else {}
        self.meta = {**data.get("meta", {}), **(meta or {})}
        self.runs: list[dict[str, Any]] = data.get("runs", [])

    def has(self, key: str) -> bool:
        """A finished run (a failed one is tried again)."""
        return any(run.get("key") == key and "error" not in run for run in self.runs)

    def add(self, key: str, run: dict[str, Any]) -> None:
        self.runs = [r for r in self.runs if r.get("key") != key] + [{"key": key, **run}]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        storage.write_json(self.path, {"meta": self.meta, "runs": self.runs})
