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
    plan.json                         the schedule and every planner decision taken
    search_log.jsonl                  one JSON event per line
"""

from __future__ import annotations

import json
import multiprocessing
import shutil
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from rachel.core import planner, steps, storage
from rachel.core.config import SearchConfig

Event = dict[str, Any]


def _train_in_worker(config_json: str, splits: str, candidate: dict[str, Any], target: str) -> Any:
    """Pool entry point: one candidate in a worker process (threads pinned before TF starts)."""
    return steps.train_candidate(SearchConfig.from_json(config_json), splits, candidate, target)


def _worker_init(threads: int | None) -> None:
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if threads is not None:
        flags = os.environ.get("XLA_FLAGS", "")
        os.environ["XLA_FLAGS"] = (
            f"{flags} --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads={threads}"
        ).strip()


class CandidateTrainer:
    """Trains an iteration's candidates: in this process, or ``workers`` at once in a pool
    of spawned processes that live for the whole search (each imports TensorFlow once).

    A pool is used whenever ``parallel_candidates`` > 1 or ``train_threads`` is set: the
    thread count can only be fixed before TensorFlow starts, and this process has already
    started it for the controller.  Workers are *spawned* (forking a process that runs
    TensorFlow can deadlock), so a script that calls :func:`run_search` needs Python's
    usual ``if __name__ == "__main__":`` guard; ``rachel search`` has it.
    """

    def __init__(self, config: SearchConfig) -> None:
        self.config = config
        self.pool: ProcessPoolExecutor | None = None
        if config.parallel_candidates > 1 or config.train_threads is not None:
            self.pool = ProcessPoolExecutor(
                max_workers=config.parallel_candidates,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_worker_init,
                initargs=(config.train_threads,),
            )

    def train(self, splits: Path, candidates: list[dict[str, Any]], folder: Path) -> Iterator[
        tuple[Path, dict[str, Any]]
    ]:
        targets = [folder / cand["candidate_id"] for cand in candidates]
        if self.pool is None:
            for cand, target in zip(candidates, targets, strict=True):
                yield target, steps.train_candidate(self.config, splits, cand, target)
            return
        config_json = json.dumps(self.config.to_json())
        futures = [
            self.pool.submit(_train_in_worker, config_json, str(splits), cand, str(target))
            for cand, target in zip(candidates, targets, strict=True)
        ]
        for target, future in zip(targets, futures, strict=True):
            yield target, future.result()

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)


def run_search(
    config: SearchConfig,
    output: str | Path,
    *,
    on_event: Callable[[Event], None] | None = None,
    plan: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run the search; returns the final metrics (also in ``output/final/metrics.json``).

    ``plan``: a recorded ``plan.json`` whose decisions are followed instead of measured
    (the same seed then gives exactly the recorded run's result).
    """
    planner.check_plan(plan, planner.plan_summary(config))  # before anything is written
    recorded = planner.load_decisions(plan)
    from rachel.core import devices

    if "on" in (config.mixed_precision, config.xla, config.multi_gpu):  # only "on" can fail
        devices.resolve(config.mixed_precision, config.xla, config.multi_gpu)  # e.g. no GPU
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    # A folder reused from an earlier run: drop that run's artifacts first, so no stale
    # iteration (say it004/ of a longer run) sits beside this run's.
    for stale in ("iterations", "final"):
        shutil.rmtree(output / stale, ignore_errors=True)
    (output / "plan.json").unlink(missing_ok=True)
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
    emit({"event": "plan", **planner.plan_summary(config), "replaying": bool(recorded)})
    splits = output / "splits.npz"
    emit({"event": "data", **steps.split_data(config, splits)})

    controller: Path | None = None
    ensemble: Path | None = None
    decisions: list[dict[str, Any]] = []
    schedules: dict[str, dict[str, int]] = {}
    trainer = CandidateTrainer(config)
    try:
        for iteration in range(config.iterations):
            it_dir = output / "iterations" / f"it{iteration:03d}"
            candidates = steps.generate_candidates(
                config, iteration, controller, ensemble, it_dir / "controller_gen", plan=plan
            )
            dirs = []
            for target, summary in trainer.train(splits, candidates, it_dir / "candidates"):
                dirs.append(target)
                emit({"event": "candidate", "iteration": iteration, **summary})
            new_ensemble = it_dir / "ensemble"
            entry = steps.weigh_ensemble(
                config, iteration, splits, ensemble, dirs, new_ensemble,
                elapsed_seconds=time.time() - started, plan=plan,
            )
            emit({"event": "iteration", **{k: v for k, v in entry.items() if k != "candidates"}})
            ensemble = new_ensemble
            schedules.update(entry.get("schedules", {}))
            if entry.get("next"):
                decisions.append(entry["next"])
            storage.write_json(
                output / "plan.json",
                {**planner.plan_summary(config), "decisions": decisions, "schedules": schedules},
            )
            if not planner.keep_searching([entry]):
                break  # the last controller update would teach nothing that is used
            controller_out = it_dir / "controller"
            if iteration + 1 < config.iterations:
                update = steps.update_controller(
                    config, it_dir / "controller_gen", ensemble, controller_out
                )
                emit({"event": "controller_update", **update})
            controller = controller_out
    finally:
        trainer.close()

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
