"""The whole RACHEL search in one process: the step functions in Algorithm 1's order.

The Kubeflow pipeline runs the same steps as separate tasks; this loop is what
``rachel search`` runs, and the reference the pipeline is checked against.  Artifacts
land under ``output``::

    config.json                       the full configuration (seed included)
    splits.npz                        the data split
    iterations/itNNN/controller_gen/  controller after sampling (decisions pending)
    iterations/itNNN/candidates/ID/   trained candidates
    iterations/itNNN/ensemble/        the ensemble after weighting + safety net
    iterations/itNNN/controller/      controller after the update
    final/                            model.keras, saved_model/, metrics.json, report.md
    search_log.jsonl                  one JSON event per line
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rachel.core import steps, storage
from rachel.core.config import SearchConfig

Event = dict[str, Any]


def run_search(
    config: SearchConfig,
    output: str | Path,
    *,
    on_event: Callable[[Event], None] | None = None,
) -> dict[str, Any]:
    """Run the search; returns the final metrics (also in ``output/final/metrics.json``)."""
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    # A folder reused from an earlier run: drop that run's artifacts first, so no stale
    # iteration (say it004/ of a longer run) sits beside this run's.
    for stale in ("iterations", "final"):
        shutil.rmtree(output / stale, ignore_errors=True)
    log_path = output / "search_log.jsonl"
    log_path.write_text("")
    started = time.time()

    def emit(event: Event) -> None:
        event = {"t": round(time.time() - started, 2), **event}
        with log_path.open("a") as fh:
            fh.write(json.dumps(event) + "\n")
        if on_event:
            on_event(event)

    storage.write_json(output / "config.json", config.to_json())
    splits = output / "splits.npz"
    emit({"event": "data", **steps.split_data(config, splits)})
    data_seconds = time.time() - started

    controller: Path | None = None
    ensemble: Path | None = None
    for iteration in range(config.iterations):
        elapsed = time.time() - started
        if config.time_budget_seconds and iteration > 0:
            per_iteration = (elapsed - data_seconds) / iteration
            if elapsed + per_iteration > config.time_budget_seconds:
                emit(
                    {
                        "event": "time_budget",
                        "iterations_done": iteration,
                        "budget_seconds": config.time_budget_seconds,
                    }
                )
                break
        it_dir = output / "iterations" / f"it{iteration:03d}"
        candidates = steps.generate_candidates(
            config, iteration, controller, ensemble, it_dir / "controller_gen"
        )
        dirs = []
        for cand in candidates:
            target = it_dir / "candidates" / cand["candidate_id"]
            summary = steps.train_candidate(config, splits, cand, target)
            dirs.append(target)
            emit({"event": "candidate", "iteration": iteration, **summary})
        new_ensemble = it_dir / "ensemble"
        entry = steps.weigh_ensemble(config, iteration, splits, ensemble, dirs, new_ensemble)
        emit({"event": "iteration", **{k: v for k, v in entry.items() if k != "candidates"}})
        ensemble = new_ensemble
        controller_out = it_dir / "controller"
        update = steps.update_controller(
            config, it_dir / "controller_gen", ensemble, controller_out
        )
        emit({"event": "controller_update", **update})
        controller = controller_out

    assert ensemble is not None
    metrics = steps.evaluate_ensemble(
        config, splits, ensemble, output / "final", started_at=started
    )
    emit(
        {
            "event": "final",
            **{
                k: metrics[k]
                for k in (
                    "test_accuracy",
                    "macro_f1",
                    "params",
                    "wall_seconds",
                    "safety_net_activations",
                )
            },
        }
    )
    return metrics
