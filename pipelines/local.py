"""Run the RACHEL pipeline on this machine with ``kfp.local`` (what ``rachel run`` does).

The SAME pipeline function is compiled exactly as for the cluster (``rachel compile``,
components deduplicated) and that IR runs under
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
import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


def run_local(
    config: SearchConfig,
    output: str | Path,
    *,
    placement: Placement = DEFAULT_PLACEMENT,
    early_stop: EarlyStop | None = None,
    cache: bool = False,
    name: str = PIPELINE_NAME,
) -> LocalRun:
    """Build the pipeline for ``config.iterations`` x ``config.candidates`` and run it locally.

    ``output`` is the local pipeline root (created if missing); each run gets its own
    timestamped folder in it.  ``cache=True`` enables kfp.local's task cache (under
    ``output/.kfp_cache``) for the steps the pipeline marks cacheable.
    """
    from kfp import components, local

    ir = compile_to_bytes(iterations=config.iterations, candidates=config.candidates,
                          placement=placement, config=config, early_stop=early_stop, name=name)
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
    # kfp.local indents task logs by swapping builtins.print; two ParallelFor threads can
    # restore each other's swapped function and leave every later print indented.
    original_print = builtins.print
    try:
        pipeline(config_json=json.dumps(config.to_json(), sort_keys=True))
    except RuntimeError as err:
        raise PipelineRunError(
            f"local pipeline run failed: {str(err).strip().splitlines()[-1]}",
            f"see the failing task's log above and its folder under {root}",
        ) from err
    finally:
        builtins.print = original_print
    seconds = time.perf_counter() - started
    new = sorted(p for p in root.iterdir() if p.name not in before and p.is_dir()
                 and p.name.startswith(f"{name}-"))
    if len(new) != 1:
        raise ArtifactError(
            f"cannot tell which folder under {root} this run wrote ({len(new)} new)",
            "use an empty --output folder",
        )
    (new[0] / "pipeline.yaml").write_bytes(ir)
    model_dir = find_final_model(new[0])
    metrics = json.loads((model_dir / "metrics.json").read_text())
    return LocalRun(new[0], model_dir, metrics, seconds)
