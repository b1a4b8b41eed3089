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
    finish/                           the finish (finish_epochs > 0): decision.json, the
                                      continued best subnetwork, the ensemble with it
    final/                            model.keras, saved_model/, metrics.json, report.md
    plan.json                         the schedule and every planner decision taken
    search_log.jsonl                  one JSON event per line
    completed.json                    (gs:// output only) the steps published so far

A killed run resumes: the same command on the same output skips every completed step
(:mod:`rachel.core.run_folder`) and, given the same seed, ends with the uninterrupted run's
result.  The planner's decisions for the iterations already weighed are read back from their
ensembles, so a run under a time budget keeps the plan it recorded before the kill.
"""

from __future__ import annotations

import json
import multiprocessing
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

from rachel.core import finish, planner, steps, stop_rules, storage
from rachel.core.config import SearchConfig
from rachel.core.ensemble_state import CANDIDATE_FILE, ENSEMBLE_FILE, METRICS_FILE, EnsembleState
from rachel.core.errors import TransientError
from rachel.core.output_lock import output_lock
from rachel.core.run_folder import LAUNCH_FILE, RunFolder, launch_record

Event = dict[str, Any]


def checkpoint_for(target: Path, root: str | None = None) -> str:
    """Where a candidate's per-epoch checkpoint lives while it trains: beside its folder, or
    under ``root`` (a gs:// run's bucket, which outlives the local working copy)."""
    if root is None:
        return str(target.with_name(f".{target.name}.ckpt"))
    return storage.join(root, target.parent.parent.name, target.name)  # itNNN/<candidate>


def _train_in_worker(
    config_json: str, splits: str, candidate: dict[str, Any], target: str, checkpoint: str
) -> Any:
    """Pool entry point: one candidate in a worker process (threads pinned before TF starts)."""
    return steps.train_candidate(
        SearchConfig.from_json(config_json), splits, candidate, target, checkpoint_uri=checkpoint
    )


def _die_with_parent() -> None:
    """Linux: have the kernel kill this worker when the search process dies (SIGKILL, OOM
    kill), so that no orphan goes on training and writing after its run is gone."""
    import ctypes
    import signal
    import sys

    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, int(signal.SIGKILL))  # PDEATHSIG
        except OSError:  # pragma: no cover - a libc without prctl: orphans finish their task
            pass


def _worker_init(threads: int | None) -> None:
    import os

    _die_with_parent()

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

    def __init__(self, config: SearchConfig, checkpoints: str | None = None) -> None:
        self.config = config
        self.checkpoints = checkpoints
        self.pool: ProcessPoolExecutor | None = None
        if config.parallel_candidates > 1 or config.train_threads is not None:
            self.pool = ProcessPoolExecutor(
                max_workers=config.parallel_candidates,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_worker_init,
                initargs=(config.train_threads,),
            )

    def train(
        self, splits: Path, candidates: list[dict[str, Any]], folder: Path
    ) -> Iterator[tuple[Path, dict[str, Any]]]:
        targets = [folder / cand["candidate_id"] for cand in candidates]
        if self.pool is None:
            for cand, target in zip(candidates, targets, strict=True):
                yield (
                    target,
                    steps.train_candidate(
                        self.config,
                        splits,
                        cand,
                        target,
                        checkpoint_uri=checkpoint_for(target, self.checkpoints),
                    ),
                )
            return
        config_json = json.dumps(self.config.to_json())
        futures = [
            self.pool.submit(
                _train_in_worker,
                config_json,
                str(splits),
                cand,
                str(target),
                checkpoint_for(target, self.checkpoints),
            )
            for cand, target in zip(candidates, targets, strict=True)
        ]
        for target, future in zip(targets, futures, strict=True):
            try:
                summary = future.result()
            except BrokenProcessPool as err:  # the worker died: killed for memory, most often
                raise TransientError(
                    f"the process training {target.name} died ({err})",
                    "run the same command again to resume; if it recurs, start over with "
                    "--restart (or another --output) and a lower parallel_candidates or "
                    "max_width",
                ) from err
            yield target, summary

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)


def run_search(
    config: SearchConfig,
    output: str | Path,
    *,
    on_event: Callable[[Event], None] | None = None,
    plan: dict[str, Any] | None = None,
    initial_controller: str | Path | None = None,
    restart: bool = False,
    started_at: float | None = None,
) -> dict[str, Any]:
    """Run the search; returns the final metrics (also in ``output/final/metrics.json``).

    ``output``: a local folder or ``gs://`` prefix (:class:`~rachel.core.run_folder.RunFolder`
    says what an earlier attempt there means: an unfinished run of the same configuration
    resumes from its last completed step, a finished one is returned as it is, anything else
    is refused; ``restart`` discards an earlier run first).
    ``plan``: a recorded ``plan.json`` whose decisions are followed instead of measured
    (the same seed then gives exactly the recorded run's result).
    ``initial_controller``: a controller checkpoint folder to start from instead of a fresh
    controller (a warm start from the registry's champion).
    ``started_at``: when a new run started, in epoch seconds, the moment its time budget
    counts from (default: now; ``rachel search`` passes its own process start, as ``rachel
    run`` does, so both count the command's start-up).

    One search at a time per output (:mod:`rachel.core.output_lock`): a second one is
    refused while the first runs.  Nothing is written before the configuration, the plan,
    the output and the dataset have been checked: a rejected run leaves its output as it
    found it.
    """
    planner.check_plan(plan, planner.plan_summary(config))
    from rachel.core import devices

    if "on" in (config.mixed_precision, config.xla, config.multi_gpu):  # only "on" can fail
        devices.resolve(config.mixed_precision, config.xla, config.multi_gpu)  # e.g. no GPU
    launch = launch_record(plan, initial_controller)
    with output_lock(output):  # another search on this output: refused, nothing touched
        run = RunFolder.open(output, config.to_json(), restart=restart, launch=launch)
        try:
            if run.state == "finished":
                metrics = storage.read_json(run.work / "final" / "metrics.json")
                if on_event:
                    on_event(
                        {
                            "t": 0.0,
                            "event": "finished_earlier",
                            "output": run.uri,
                            "test_accuracy": metrics["test_accuracy"],
                        }
                    )
                return dict(metrics)
            return _search(config, run, on_event, plan, initial_controller, started_at, launch)
        finally:
            run.close()


def _search(
    config: SearchConfig,
    run: RunFolder,
    on_event: Callable[[Event], None] | None,
    plan: dict[str, Any] | None,
    initial_controller: str | Path | None,
    started_at: float | None = None,
    launch: dict[str, Any] | None = None,
) -> dict[str, Any]:
    work = run.work
    splits = work / "splits.npz"
    data_summary = None
    loading_started = started_at or time.time()  # a new run's clock includes reading the data
    if run.restart_pending or not splits.exists():
        # Read and validate the dataset before the first byte of the run is written.
        with tempfile.TemporaryDirectory(prefix="rachel-split-") as tmp:
            data_summary = steps.split_data(config, Path(tmp) / "splits.npz")
            run.discard_earlier()  # --restart: only now that the new run is valid
            work.mkdir(parents=True, exist_ok=True)
            if run.state == "new":  # config.json first: it marks the folder as a run's
                storage.write_json(work / "config.json", config.to_json())
                run.publish("config.json")
                storage.write_json(work / LAUNCH_FILE, launch or launch_record(None, None))
                run.publish(LAUNCH_FILE)
            storage.upload_file(Path(tmp) / "splits.npz", str(splits))  # atomic copy
    log_path = work / "search_log.jsonl"
    # On resume the clock continues from the last completed iteration's recorded time.
    resumed_from = _completed_iterations(work, config.iterations)
    offset = _recorded_elapsed(work, resumed_from)
    started = loading_started if run.state == "new" else time.time() - offset

    def emit(event: Event) -> None:
        event = {"t": round(time.time() - started, 2), **event}
        with log_path.open("a") as fh:
            fh.write(json.dumps(event) + "\n")
        if on_event:
            on_event(event)

    if run.state == "new":
        emit(
            {
                "event": "plan",
                **planner.plan_summary(config),
                "replaying": bool(plan),
                "warm_start": str(initial_controller) if initial_controller else None,
            }
        )
        emit({"event": "data", **(data_summary or {})})
    else:
        emit(
            {
                "event": "resume",
                "output": run.uri,
                "completed_iterations": resumed_from,
                "elapsed_before": round(offset, 2),
            }
        )
    if data_summary is not None:
        run.publish("splits.npz")

    controller: Path | None = Path(initial_controller) if initial_controller else None
    ensemble: Path | None = None
    decisions: list[dict[str, Any]] = []
    schedules: dict[str, dict[str, Any]] = {}
    trainer: CandidateTrainer | None = None
    try:
        for iteration in range(config.iterations):
            it_rel = f"iterations/it{iteration:03d}"
            it_dir = work / it_rel
            new_ensemble = it_dir / "ensemble"
            if not (new_ensemble / ENSEMBLE_FILE).exists():  # else weighed by an earlier attempt
                candidates = steps.generate_candidates(
                    config, iteration, controller, ensemble, it_dir / "controller_gen", plan=plan
                )
                run.publish(f"{it_rel}/controller_gen")
                dirs = [it_dir / "candidates" / c["candidate_id"] for c in candidates]
                todo = [c for c, d in zip(candidates, dirs, strict=True) if not _trained(d, c)]
                if todo:  # an earlier attempt may have trained some of them already
                    trainer = trainer or CandidateTrainer(config, run.checkpoints)
                    for target, summary in trainer.train(splits, todo, it_dir / "candidates"):
                        run.publish(f"{it_rel}/candidates/{target.name}")
                        emit({"event": "candidate", "iteration": iteration, **summary})
                weighed = steps.weigh_ensemble(
                    config,
                    iteration,
                    splits,
                    ensemble,
                    dirs,
                    new_ensemble,
                    elapsed_seconds=time.time() - started,
                    plan=plan,
                )
                emit(
                    {
                        "event": "iteration",
                        **{k: v for k, v in weighed.items() if k != "candidates"},
                    }
                )
                run.publish(f"{it_rel}/ensemble")
            ensemble = new_ensemble
            history = EnsembleState.read(ensemble).history
            entry = history[-1]
            schedules.update(entry.get("schedules", {}))
            if entry.get("next"):
                decisions.append(entry["next"])
            storage.write_json(
                work / "plan.json",
                {**planner.plan_summary(config), "decisions": decisions, "schedules": schedules},
            )
            reason = stop_rules.config_stop_reason(config, history)
            if reason:
                if iteration + 1 < config.iterations:
                    emit({"event": "stop", "after_iteration": iteration, "reason": reason})
                break  # the last controller update would teach nothing that is used
            controller_out = it_dir / "controller"
            if iteration + 1 < config.iterations and not controller_out.exists():
                update = steps.update_controller(
                    config, it_dir / "controller_gen", ensemble, controller_out
                )
                emit({"event": "controller_update", **update})
                run.publish(f"{it_rel}/controller")
            controller = controller_out
    finally:
        if trainer is not None:
            trainer.close()  # before the finish: the idle workers' memory is freed

    assert ensemble is not None
    if config.finish_epochs > 0:
        ensemble = _finish(config, run, splits, ensemble, started, emit, plan)
        plan_record = storage.read_json(work / "plan.json")
        state = EnsembleState.read(ensemble)
        assert state.finish is not None
        plan_record["finish"] = state.finish["decision"]
        if state.finish.get("schedule"):
            plan_record["schedules"][finish.FINISH_ID] = state.finish["schedule"]
        storage.write_json(work / "plan.json", plan_record)
    metrics = steps.evaluate_ensemble(config, splits, ensemble, work / "final", started_at=started)
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
    run.publish("final")
    return metrics


def _finish(
    config: SearchConfig,
    run: RunFolder,
    splits: Path,
    ensemble: Path,
    started: float,
    emit: Callable[[Event], None],
    plan: dict[str, Any] | None,
) -> Path:
    """The finish (:mod:`rachel.core.finish`) in this process, on every core: decide, train,
    add.  Each part is a completed step a resumed run skips; a resumed finish follows the
    decision recorded before the kill."""
    out = run.work / "finish"
    finished = out / "ensemble"
    if (finished / ENSEMBLE_FILE).exists():
        return finished
    decision_file = out / "decision.json"
    if decision_file.exists():
        plan = {**(plan or {}), "finish": storage.read_json(decision_file)}
    decision, candidate = finish.finish_candidate(
        config, ensemble, elapsed_seconds=time.time() - started, plan=plan
    )
    if not decision_file.exists():
        out.mkdir(parents=True, exist_ok=True)
        storage.write_json(decision_file, decision.to_json())
        run.publish("finish/decision.json")
        emit({"event": "finish_plan", "plan": finish.describe(decision), **decision.to_json()})
    target = out / "candidates" / finish.FINISH_ID
    # warm_start names the member's folder by its absolute path, which differs between two
    # local copies of one gs:// run (or a moved folder): the rest identifies the training.
    if candidate is not None and not _trained(target, candidate, ignore=("warm_start",)):
        summary = steps.train_candidate(
            config,
            splits,
            candidate,
            target,
            checkpoint_uri=checkpoint_for(target, run.checkpoints),
        )
        run.publish(f"finish/candidates/{finish.FINISH_ID}")
        emit({"event": "candidate", "iteration": "finish", **summary})
    record = finish.add_finished_member(
        config, splits, ensemble, decision, target if candidate is not None else None, finished
    )
    run.publish("finish/ensemble")
    emit({"event": "finish", **{k: v for k, v in record.items() if k != "decision"}})
    return finished


def _trained(folder: Path, candidate: dict[str, Any], ignore: tuple[str, ...] = ()) -> bool:
    """Whether an earlier attempt trained exactly this proposal into ``folder`` (the
    ``ignore`` keys of the candidate aside)."""
    try:
        recorded = json.loads((folder / CANDIDATE_FILE).read_text())
    except (OSError, json.JSONDecodeError):
        return False
    wanted = json.loads(json.dumps(candidate))
    for key in ignore:
        recorded.pop(key, None)
        wanted.pop(key, None)
    return (folder / METRICS_FILE).exists() and recorded == wanted


def _completed_iterations(work: Path, iterations: int) -> int:
    """How many iterations an earlier attempt completed (their ensembles exist)."""
    done = 0
    while (
        done < iterations
        and (work / "iterations" / f"it{done:03d}" / "ensemble" / ENSEMBLE_FILE).exists()
    ):
        done += 1
    return done


def _recorded_elapsed(work: Path, completed: int) -> float:
    """The run's wall time when its last completed iteration was weighed (0 for none)."""
    if completed == 0:
        return 0.0
    state = EnsembleState.read(work / "iterations" / f"it{completed - 1:03d}" / "ensemble")
    return float(state.history[-1].get("elapsed_seconds") or 0.0)
