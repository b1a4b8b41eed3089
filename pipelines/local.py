"""Run the RACHEL pipeline on this machine with ``kfp.local`` (what ``rachel run`` does).

The SAME pipeline function is compiled as for the cluster (``rachel compile``, less the
sharing of identical components, see :func:`run_local`) and that IR runs under
``kfp.local.SubprocessRunner(use_venv=False)``: every task is a subprocess of this Python
environment (the components' ``base_image`` and the Kubernetes placement are ignored), and
artifacts land under a local pipeline root (the IR is kept as ``pipeline.yaml``)::

    <output>/<pipeline-name>-<timestamp>/
        split-data/splits
        generate-candidates[-N]/controller_out ...
        for-loop-*-iteration-K/train-candidate[-N]/model/   (one per candidate)
        weigh-ensemble[-N]/ensemble_out/
        evaluate-ensemble/model/   model.keras, saved_model/, metrics.json, report.md

``kfp.local`` supports ``dsl.ParallelFor``, ``dsl.Collected`` and ``dsl.If``/``dsl.Else``
(checked by the end-to-end test); it does not apply retries' backoff or any platform config.
"""

from __future__ import annotations

import builtins
import contextlib
import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from rachel.components.settings import DEFAULT_PLACEMENT, Placement
from rachel.core.config import SearchConfig
from rachel.core.errors import ArtifactError, PipelineRunError
from rachel.pipelines.compile import compile_to_bytes
from rachel.pipelines.rachel_pipeline import PIPELINE_NAME, EarlyStop

FINAL_TASK = "evaluate-ensemble"


@dataclass(frozen=True)
class LocalRun:
    """Where a local run put its outputs, and its final metrics."""

    run_dir: Path
    model_dir: Path  # model.keras, saved_model/, metrics.json, report.md, search_log.json
    metrics: dict[str, Any]
    seconds: float

    @property
    def model_file(self) -> Path:
        return self.model_dir / "model.keras"

    @property
    def metrics_file(self) -> Path:
        return self.model_dir / "metrics.json"


def find_final_model(run_dir: str | Path) -> Path:
    """The evaluation task's model folder in a local run (any branch, when early stop ran)."""
    found = sorted(Path(run_dir).glob(f"**/{FINAL_TASK}*/model/metrics.json"))
    if len(found) != 1:
        raise ArtifactError(
            f"expected one final model under {run_dir}, found {len(found)}",
            "look at the run's task folders; the pipeline may have failed before evaluation",
        )
    return found[0].parent


@contextlib.contextmanager
def _logs_to(path: Path) -> Iterator[TextIO]:
    """Send this process's stdout/stderr (and its subprocesses') to ``path``; yield the console."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved_out, saved_err = os.dup(1), os.dup(2)
    log_fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    console = os.fdopen(os.dup(saved_out), "w", buffering=1)
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    try:
        yield console
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved_out, 1)
        os.dup2(saved_err, 2)
        for fd in (saved_out, saved_err, log_fd):
            os.close(fd)
        console.close()


class _ProgressWatcher(threading.Thread):
    """Turns the artifacts that appear in the run folder into search events."""

    def __init__(
        self, root: Path, before: set[str], name: str, on_event: Callable[[dict[str, Any]], None]
    ) -> None:
        super().__init__(daemon=True)
        self.root, self.before, self.name, self.on_event = root, before, name, on_event
        self.seen: set[Path] = set()
        self.started = time.time()
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.wait(1.0):
            self.scan()

    def scan(self) -> None:
        for run_dir in self.root.iterdir():
            if run_dir.name in self.before or not run_dir.name.startswith(f"{self.name}-"):
                continue
            for path in sorted(run_dir.glob("for-loop-*/train-candidate*/model/metrics.json")):
                self._emit(
                    path,
                    lambda d, p: {
                        "event": "candidate",
                        **d,
                        "iteration": json.loads((p.parent / "candidate.json").read_text())[
                            "iteration"
                        ],
                    },
                )
            for path in sorted(run_dir.glob("weigh-ensemble*/ensemble_out/ensemble.json")):
                self._emit(path, lambda d, p: {"event": "iteration", **d["history"][-1]})
            for path in sorted(run_dir.glob("finish-ensemble*/ensemble_out/ensemble.json")):
                self._emit(path, lambda d, p: {"event": "finish", **(d.get("finish") or {})})

    def _emit(self, path: Path, make: Callable[[Any, Path], dict[str, Any]]) -> None:
        if path in self.seen:
            return
        self.seen.add(path)
        try:
            event = make(json.loads(path.read_text()), path)
        except (OSError, ValueError, KeyError):
            self.seen.discard(path)  # not complete yet: try again at the next scan
            return
        self.on_event({"t": round(time.time() - self.started, 1), **event})


def run_local(
    config: SearchConfig,
    output: str | Path,
    *,
    placement: Placement = DEFAULT_PLACEMENT,
    early_stop: EarlyStop | None = None,
    cache: bool = False,
    name: str = PIPELINE_NAME,
    on_event: Callable[[dict[str, Any]], None] | None = None,
    verbose: bool = True,
    plan: dict[str, Any] | None = None,
    params: dict[str, Any] | None = None,
    started_at: float | None = None,
) -> LocalRun:
    """Build the pipeline for ``config.iterations`` x ``config.candidates`` and run it locally.

    ``output`` is the local pipeline root (created if missing); each run gets its own
    timestamped folder in it.  ``cache=True`` enables kfp.local's task cache (under
    ``output/.kfp_cache``) for the steps the pipeline marks cacheable.  ``on_event``
    receives a ``candidate`` event per trained candidate and an ``iteration`` event per
    weighing step as their artifacts appear.  With ``verbose=False`` kfp.local's own task
    logs go to ``kfp-local.log`` in the run folder instead of the console.  ``plan``: a
    recorded ``plan.json`` whose decisions the run replays (see :mod:`rachel.core.planner`).
    ``params``: other pipeline parameters (``registry``, ``promotion_margin``).
    ``started_at``: when the run started, in epoch seconds (default: now), the moment its
    time budget counts from (``rachel run`` passes its own process start).
    """
    started_at = started_at or time.time()
    from kfp import components, dsl, local

    from rachel.core import planner

    planner.check_plan(plan, planner.plan_summary(config))  # the same refusal as rachel search

    # kfp.local names each task's folder after its *component*: with the cluster IR's
    # shared (deduplicated) components, every iteration would write into one folder and a
    # step would read its input from the folder it is replacing.  Locally each task keeps
    # its own component, so each iteration keeps its own folders.
    ir = compile_to_bytes(
        iterations=config.iterations,
        candidates=config.candidates,
        placement=placement,
        config=config,
        early_stop=early_stop,
        name=name,
        dedupe=False,
    )
    # kfp.local cannot resolve the job's creation time (it fails on the placeholder); the
    # run's start reaches the tasks as the started_at parameter instead.
    ir = ir.replace(dsl.PIPELINE_JOB_CREATE_TIME_UTC_PLACEHOLDER.encode(), b"")
    root = Path(output).resolve()
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        package = Path(tmp) / "pipeline.yaml"
        package.write_bytes(ir)
        pipeline = components.load_component_from_file(str(package))
    before = {p.name for p in root.iterdir()}
    local.init(
        runner=local.SubprocessRunner(use_venv=False),
        pipeline_root=str(root),
        raise_on_error=True,
        enable_caching=cache,
    )
    started = time.perf_counter()
    watcher = _ProgressWatcher(root, before, name, on_event) if on_event else None
    log_path = root / f".{name}-{int(time.time() * 1000)}.log"
    # kfp.local indents task logs by swapping builtins.print; two ParallelFor threads can
    # restore each other's swapped function and leave every later print indented.
    original_print = builtins.print
    try:
        with contextlib.ExitStack() as stack:
            if not verbose:
                console = stack.enter_context(_logs_to(log_path))
                if on_event:
                    printing, on_event = on_event, None

                    def to_console(event: dict[str, Any]) -> None:
                        builtins.print = original_print
                        with contextlib.redirect_stdout(console):
                            printing(event)

                    watcher = _ProgressWatcher(root, before, name, to_console)
            if watcher:
                watcher.start()
            try:
                pipeline(
                    config_json=json.dumps(config.to_json(), sort_keys=True),
                    plan_json=json.dumps(plan) if plan else "",
                    **{"started_at": started_at, **(params or {})},
                )
            finally:
                if watcher:
                    watcher.halt.set()
                    watcher.join()
                    watcher.scan()
    except RuntimeError as err:
        where = f"the log {log_path}" if not verbose else "the failing task's log above"
        raise PipelineRunError(
            f"local pipeline run failed: {str(err).strip().splitlines()[-1]}",
            f"see {where} and the task folders under {root}",
        ) from err
    finally:
        builtins.print = original_print
    seconds = time.perf_counter() - started
    new = sorted(
        p
        for p in root.iterdir()
        if p.name not in before and p.is_dir() and p.name.startswith(f"{name}-")
    )
    if len(new) != 1:
        raise ArtifactError(
            f"cannot tell which folder under {root} this run wrote ({len(new)} new)",
            "use an empty --output folder",
        )
    (new[0] / "pipeline.yaml").write_bytes(ir)
    if log_path.exists():
        os.replace(log_path, new[0] / "kfp-local.log")
    model_dir = find_final_model(new[0])
    metrics = json.loads((model_dir / "metrics.json").read_text())
    return LocalRun(new[0], model_dir, metrics, seconds)
