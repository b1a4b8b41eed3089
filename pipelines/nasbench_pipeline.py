"""The NAS-Bench search-agent pipeline (independent of the RACHEL pipeline)::

    load-table -> fit-surrogate -> ParallelFor(seeds)[ train-agent -> evaluate-agent ]
               -> aggregate-report (Collected evaluations) -> publish-agent (the best one)

* ``load-table``: a Parquet table or an official ``.tfrecord`` (converted), local or gs://;
  returns whether the table is partial.
* ``fit-surrogate``: the bounded XGBoost surrogate, fit only when the table is partial (for a
  complete table the step writes a marker and the table itself is the reward; the decision is
  made at run time from the data, so one compiled pipeline serves both).
* ``train-agent`` x S seeds in parallel (``dsl.ParallelFor`` over the compile-time seeds,
  ``parallelism`` at once).  CPU resources by default; ``NasBenchPlacement(gpu=True)`` gives the
  learner the same L4 placement as RACHEL's training (accelerator, node selector, toleration,
  retries with backoff; a retried task resumes from its checkpoints).
* ``evaluate-agent``: the agent against random search, random walk and local search through
  the protocol (report.json/.md, plots, KFP metrics).
* ``aggregate-report``: one Markdown report of every agent and the baselines + metrics; returns
  the best seed.
* ``publish-agent``: the best agent, its surrogate and evaluation under
  ``<registry_uri>/<agent_name>/<version>`` (see :mod:`rachel.core.nasbench.registry`).

Compiling imports kfp and the component declarations only, never TensorFlow.
"""

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from kfp import dsl

from rachel.components.nasbench_aggregate_report import nasbench_aggregate_report
from rachel.components.nasbench_evaluate_agent import nasbench_evaluate_agent
from rachel.components.nasbench_fit_surrogate import nasbench_fit_surrogate
from rachel.components.nasbench_load_table import nasbench_load_table
from rachel.components.nasbench_publish_agent import nasbench_publish_agent
from rachel.components.nasbench_train_agent import nasbench_train_agent
from rachel.components.settings import DEFAULT_PLACEMENT, Images, Placement
from rachel.core.errors import ConfigError
from rachel.core.nasbench.agent import AgentConfig
from rachel.core.nasbench.evaluation import ProtocolConfig
from rachel.core.nasbench.experiment import ExperimentSettings
from rachel.core.nasbench.pipeline_steps import protocol_to_json, settings_to_json
from rachel.pipelines.rachel_pipeline import _training

PIPELINE_NAME = "rachel-nasbench-agent"
MAX_SEEDS = 64
#: NAS-Bench default placement: CPU training (set gpu=True for an L4 learner)
NASBENCH_PLACEMENT = DEFAULT_PLACEMENT.replace(gpu=False)

CACHING = {
    "load_table": True,
    "fit_surrogate": True,
    "train_agent": True,  # seeded; a retry resumes from the task's checkpoints
    "evaluate_agent": False,  # records timings
    "aggregate_report": False,
    "publish_agent": False,  # writes outside the pipeline root
}


@dataclass(frozen=True)
class NasBenchRun:
    """What a compiled pipeline runs by default (each a run-time parameter as JSON)."""

    settings: ExperimentSettings = ExperimentSettings()
    agent: AgentConfig = AgentConfig()
    protocol: ProtocolConfig = ProtocolConfig(k_sets=5, m_states=2000, n_resamples=2000)

    @classmethod
    def smoke(cls) -> "NasBenchRun":
        """Seconds per step on 2 CPU cores (the kfp.local end-to-end test)."""
        return cls(
            ExperimentSettings(
                max_vertices=5,
                max_neighbours=8,
                surrogate_params={"n_estimators": 40, "max_depth": 4},
            ),
            AgentConfig.smoke(total_env_steps=300, checkpoint_period=100, target_update_period=50),
            ProtocolConfig(
                k_sets=1, m_states=20, budgets=(5, 10), curve_lengths=(10,), n_resamples=200
            ),
        )


def _task(task: dsl.PipelineTask, placement: Placement, step: str, name: str) -> dsl.PipelineTask:
    task.set_cpu_request(placement.cpu_request).set_memory_request(placement.memory_request)
    task.set_caching_options(CACHING[step])
    task.set_display_name(name)
    return task


def build_pipeline(
    seeds: Sequence[int] = (0, 1),
    run: NasBenchRun | None = None,
    placement: Placement = NASBENCH_PLACEMENT,
    *,
    name: str = PIPELINE_NAME,
) -> Callable[..., Any]:
    """A KFP pipeline function training ``len(seeds)`` agents (a compile-time list)."""
    seeds = [int(s) for s in seeds]
    if not 1 <= len(seeds) <= MAX_SEEDS or len(set(seeds)) != len(seeds):
        raise ConfigError(
            f"seeds must be 1..{MAX_SEEDS} distinct integers, got {seeds}",
            "pass e.g. seeds=(0, 1, 2, 3, 4) (the paper trains 5 agents)",
        )
    run = run or NasBenchRun()
    defaults = {
        "settings_json": settings_to_json(run.settings),
        "agent_config_json": json.dumps(run.agent.to_json(), sort_keys=True),
        "protocol_json": protocol_to_json(run.protocol),
    }

    def nasbench_pipeline(
        table_uri: str,
        registry_uri: str,
        agent_name: str = "nasbench101",
        version: str = "",
        settings_json: str = defaults["settings_json"],
        agent_config_json: str = defaults["agent_config_json"],
        protocol_json: str = defaults["protocol_json"],
    ) -> None:
        load = _task(
            nasbench_load_table(table_uri=table_uri), placement, "load_table", "load-table"
        )
        table = load.outputs["table"]
        fit = _task(
            nasbench_fit_surrogate(settings_json=settings_json, table=table),
            placement,
            "fit_surrogate",
            "fit-surrogate",
        )
        surrogate = fit.outputs["surrogate"]
        with dsl.ParallelFor(seeds, parallelism=placement.parallelism) as seed:
            train = nasbench_train_agent(
                settings_json=settings_json,
                agent_config_json=agent_config_json,
                seed=seed,
                table=table,
                surrogate=surrogate,
            )
            _training(train, placement).set_display_name("train-agent")
            train.set_caching_options(CACHING["train_agent"])
            evaluate = _task(
                nasbench_evaluate_agent(
                    settings_json=settings_json,
                    protocol_json=protocol_json,
                    table=table,
                    surrogate=surrogate,
                    agent=train.outputs["agent"],
                ),
                placement,
                "evaluate_agent",
                "evaluate-agent",
            )
        aggregate = _task(
            nasbench_aggregate_report(evaluations=dsl.Collected(evaluate.outputs["evaluation"])),
            placement,
            "aggregate_report",
            "aggregate-report",
        )
        _task(
            nasbench_publish_agent(
                registry_uri=registry_uri,
                agent_name=agent_name,
                version=version,
                best_seed=aggregate.outputs["Output"],
                agents=dsl.Collected(train.outputs["agent"]),
                evaluations=dsl.Collected(evaluate.outputs["evaluation"]),
                surrogate=surrogate,
            ),
            placement,
            "publish_agent",
            "publish-agent",
        )

    nasbench_pipeline.__doc__ = (
        f"NAS-Bench search agent: {len(seeds)} Ape-X agent(s) trained in parallel on the "
        "full graph (surrogate where the table is partial), evaluated against the baselines, "
        "the best published to a registry."
    )
    return dsl.pipeline(name=name, description=nasbench_pipeline.__doc__)(nasbench_pipeline)


def compile_to_bytes(
    seeds: Sequence[int] = (0, 1),
    run: NasBenchRun | None = None,
    placement: Placement = NASBENCH_PLACEMENT,
    *,
    name: str = PIPELINE_NAME,
    images: Images | None = None,
) -> bytes:
    """The IR YAML of :func:`build_pipeline`, with ``images`` (default
    :meth:`Images.from_env`) in every executor."""
    import tempfile
    from pathlib import Path

    import yaml
    from kfp import compiler

    from rachel.pipelines.compile import set_images

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "pipeline.yaml"
        compiler.Compiler().compile(build_pipeline(seeds, run, placement, name=name), str(path))
        docs = list(yaml.safe_load_all(path.read_bytes()))
    set_images(docs[0], images or Images.from_env())
    return yaml.safe_dump_all(docs, sort_keys=True).encode()


def run_local(
    table_uri: str,
    registry_uri: str,
    output: str,
    *,
    seeds: Sequence[int] = (0, 1),
    run: NasBenchRun | None = None,
    agent_name: str = "nasbench101",
    version: str = "",
) -> dict[str, Any]:
    """Run the compiled pipeline under ``kfp.local`` (every task a subprocess of this Python);
    returns the run folder and the published card."""
    import tempfile
    import time
    from pathlib import Path

    from kfp import components, local

    from rachel.core import storage
    from rachel.core.errors import PipelineRunError

    ir = compile_to_bytes(seeds, run)
    root = Path(output).resolve()
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        package = Path(tmp) / "pipeline.yaml"
        package.write_bytes(ir)
        pipeline = components.load_component_from_file(str(package))
    before = {p.name for p in root.iterdir()}
    local.init(
        runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(root), raise_on_error=True
    )
    started = time.perf_counter()
    try:
        pipeline(
            table_uri=table_uri, registry_uri=registry_uri, agent_name=agent_name, version=version
        )
    except RuntimeError as err:
        raise PipelineRunError(
            f"local NAS-Bench pipeline run failed: {str(err).strip().splitlines()[-1]}",
            f"see the task logs above and the folders under {root}",
        ) from err
    new = sorted(p for p in root.iterdir() if p.name not in before and p.is_dir())
    cards = sorted(p for d in new for p in d.glob("*publish-agent*/published/card.json"))
    if len(new) != 1 or len(cards) != 1:
        raise PipelineRunError(
            f"cannot find this run's published card under {root}", "use an empty output folder"
        )
    (new[0] / "pipeline.yaml").write_bytes(ir)
    return {
        "run_dir": str(new[0]),
        "seconds": time.perf_counter() - started,
        "card": storage.read_json(str(cards[0])),
    }
