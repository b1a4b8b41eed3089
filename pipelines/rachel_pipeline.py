"""The RACHEL search as a Kubeflow Pipelines v2 pipeline.

KFP v2 has no recursion, so :func:`build_pipeline` unrolls the search loop in Python; the
number of iterations is a compile-time choice, the candidates of an iteration are a runtime
list that ``dsl.ParallelFor`` fans out::

    split-data
      -> [ generate-candidates -> ParallelFor(train-candidate) -> Collected
           -> weigh-ensemble -> update-controller ]  x iterations
      -> [ finish ]             only when the configuration has finish_epochs > 0
      -> evaluate-ensemble
      -> [ promote-champion ]   only when the ``registry`` parameter is set (dsl.If)

This is step for step :func:`rachel.core.search.run_search` (the reference), with the
controller and ensemble states passed as artifacts from one iteration to the next.

Placement (:class:`rachel.components.settings.Placement`): the training task asks for one
``nvidia.com/gpu``, gets the GKE node selector ``cloud.google.com/gke-accelerator: nvidia-l4``
and a toleration for the GPU taint, and retries with exponential backoff (spot nodes);
every task gets CPU/memory requests.  Caching is on for the deterministic steps (split,
generation, training with its derived seed, controller update) and off for those whose
outputs record timings (ensemble weighing, evaluation).

Time budget: when the config has ``time_budget_seconds``, the weigh step takes the
planner's decision (:mod:`rachel.core.planner`) and the DAG is compiled with the early-stop
conditions below; the ``plan_json`` parameter replays a recorded plan (``plan.json`` of a
``rachel search`` run) so that the pipeline takes exactly that run's decisions.

Early stop: when the configuration has a stop rule (a time budget,
``max_safety_net_activations``, ``target_accuracy``: the rules of ``rachel search``, see
:mod:`rachel.core.stop_rules`) or :class:`EarlyStop` is given, iteration ``i+1`` runs inside
``dsl.If(weigh_i.keep_searching)``; the matching ``dsl.Else`` evaluates the ensemble as it
is.  The compiled DAG then nests one condition per iteration.

Champion registry (:mod:`rachel.core.registry`): a run with the ``registry`` parameter set
(a ``gs://`` prefix the pipeline's service account may write) ends with ``promote-champion``
after each evaluation: the final model and the last controller update are published as the
registry's champion if the model beats it by ``promotion_margin`` on the same test split.
With ``registry`` empty (the default) the step is skipped.

Run clock: the tasks that decide on time (weigh, finish, evaluate) count from the run's
start, ``started_at`` (epoch seconds; ``rachel run`` passes it), else the job's creation
time (:mod:`rachel.core.run_clock`).  The finish (:mod:`rachel.core.finish`) is compiled
in when the compiled configuration has ``finish_epochs`` > 0; a run whose ``config_json``
asks for a finish the DAG lacks is refused at its first task (split-data), naming the fix.

Compiling imports kfp and the component modules only, never TensorFlow.
"""

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kfp import dsl, kubernetes

from rachel.components.evaluate_ensemble import evaluate_ensemble
from rachel.components.finish_ensemble import finish_ensemble
from rachel.components.generate_candidates import generate_candidates
from rachel.components.promote_champion import promote_champion
from rachel.components.settings import DEFAULT_PLACEMENT, Placement
from rachel.components.split_data import split_data
from rachel.components.train_candidate import train_candidate
from rachel.components.update_controller import update_controller
from rachel.components.weigh_ensemble import weigh_ensemble
from rachel.core.config import SearchConfig, budget_config
from rachel.core.errors import ConfigError

PIPELINE_NAME = "rachel-nas"
MAX_ITERATIONS = 200

# Which steps may reuse a cached result: deterministic given their inputs (seeds included).
CACHING = {
    "split_data": True,
    "generate_candidates": True,
    "train_candidate": True,
    "weigh_ensemble": False,  # records start times and training seconds
    "update_controller": True,
    "finish_ensemble": False,  # its time limit is what the run has left
    "evaluate_ensemble": False,  # records wall-clock and inference seconds
    "promote_champion": False,  # depends on the registry's champion at run time
}


@dataclass(frozen=True)
class EarlyStop:
    """Compile the conditional DAG; its non-zero values become the compiled configuration's
    ``max_safety_net_activations`` / ``target_accuracy`` (the weigh step reads the rules from
    the configuration, like ``rachel search``)."""

    max_safety_net_activations: int = 0
    target_accuracy: float = 0.0

    def __post_init__(self) -> None:
        if self.max_safety_net_activations < 0:
            raise ConfigError("max_safety_net_activations must be >= 0")
        if not 0.0 <= self.target_accuracy <= 1.0:
            raise ConfigError("target_accuracy must be within 0..1")


def _light(task: dsl.PipelineTask, placement: Placement, step: str) -> dsl.PipelineTask:
    task.set_cpu_request(placement.cpu_request).set_memory_request(placement.memory_request)
    task.set_caching_options(CACHING[step])
    return task


def _training(task: dsl.PipelineTask, placement: Placement) -> dsl.PipelineTask:
    task.set_cpu_request(placement.train_cpu_request)
    task.set_memory_request(placement.train_memory_request)
    if placement.gpu:
        task.set_accelerator_type(placement.accelerator_type)
        task.set_accelerator_limit(placement.accelerator_limit)
        kubernetes.add_node_selector(
            task, label_key=placement.node_selector_key, label_value=placement.node_selector_value
        )
        kubernetes.add_toleration(
            task,
            key=placement.toleration_key,
            operator=placement.toleration_operator,
            effect=placement.toleration_effect,
        )
    if placement.train_retries:
        task.set_retry(
            num_retries=placement.train_retries,
            backoff_duration=placement.train_backoff_duration,
            backoff_factor=placement.train_backoff_factor,
            backoff_max_duration=placement.train_backoff_max_duration,
        )
    task.set_caching_options(CACHING["train_candidate"])
    return task


def pipeline_config(
    iterations: int, candidates: int, config: SearchConfig | None = None
) -> SearchConfig:
    """The config a compiled pipeline runs by default (iterations/candidates made to match);
    without ``config``, the smoke preset without its time budget and without its finish (a
    plain, unconditional DAG: untimed, smoke's finish would train its 20 epochs)."""
    base = (
        config
        if config is not None
        else budget_config("smoke").replace(time_budget_seconds=None, finish_epochs=0)
    )
    return base.replace(iterations=iterations, candidates=candidates)


def build_pipeline(
    iterations: int = 2,
    candidates: int = 2,
    placement: Placement = DEFAULT_PLACEMENT,
    config: SearchConfig | None = None,
    *,
    early_stop: EarlyStop | None = None,
    name: str = PIPELINE_NAME,
) -> Callable[..., Any]:
    """A KFP pipeline function (a ``GraphComponent``) for ``iterations`` unrolled iterations.

    ``config`` (default: the smoke budget) becomes the default of the pipeline's
    ``config_json`` parameter, with ``iterations`` and ``candidates`` set to match.  A run may
    pass another ``config_json``; its ``candidates`` sets the ParallelFor width at run time,
    while the number of iterations is fixed here.
    """
    if not isinstance(iterations, int) or not 1 <= iterations <= MAX_ITERATIONS:
        raise ConfigError(
            f"iterations must be within 1..{MAX_ITERATIONS}, got {iterations!r}",
            "unrolling more iterations makes the workflow too large for etcd",
        )
    default_config = pipeline_config(iterations, candidates, config)
    if early_stop is not None:  # its rules are the configuration's, as in rachel search
        default_config = default_config.replace(
            max_safety_net_activations=early_stop.max_safety_net_activations
            or default_config.max_safety_net_activations,
            target_accuracy=early_stop.target_accuracy or default_config.target_accuracy,
        )
    default_json = json.dumps(default_config.to_json(), sort_keys=True)
    if early_stop is None and (
        default_config.time_budget_seconds is not None
        or default_config.max_safety_net_activations
        or default_config.target_accuracy
    ):
        early_stop = EarlyStop()  # a stop rule needs the conditional DAG

    clock = {"job_created": dsl.PIPELINE_JOB_CREATE_TIME_UTC_PLACEHOLDER}

    def body(
        config_json: str, plan_json: str, registry: Any, promotion_margin: Any, started_at: Any
    ) -> None:
        clock["started_at"] = started_at
        split = _light(
            split_data(config_json=config_json, finish_in_dag=default_config.finish_epochs > 0),
            placement,
            "split_data",
        )
        split.set_display_name("split-data")
        splits = split.outputs["splits"]

        def iteration(it: int, controller: Any, ensemble: Any) -> None:
            state = {} if it == 0 else {"controller_in": controller, "ensemble_in": ensemble}
            gen = generate_candidates(
                config_json=config_json, iteration=it, plan_json=plan_json, **state
            )
            _light(gen, placement, "generate_candidates").set_display_name(f"generate-it{it}")
            fan_out = dsl.ParallelFor(gen.outputs["Output"], parallelism=placement.parallelism)
            with fan_out as candidate:
                train = train_candidate(
                    config_json=config_json,
                    candidate=candidate,
                    splits=splits,
                    checkpoint_root=dsl.PIPELINE_ROOT_PLACEHOLDER,
                )
                _training(train, placement).set_display_name(f"train-it{it}")
            weigh_state = {} if it == 0 else {"ensemble_in": ensemble}
            weigh = weigh_ensemble(
                config_json=config_json,
                iteration=it,
                splits=splits,
                candidates=dsl.Collected(train.outputs["model"]),
                plan_json=plan_json,
                **weigh_state,
                **clock,
            )
            _light(weigh, placement, "weigh_ensemble").set_display_name(f"weigh-it{it}")
            update = update_controller(
                config_json=config_json,
                controller_in=gen.outputs["controller_out"],
                ensemble=weigh.outputs["ensemble_out"],
            )
            _light(update, placement, "update_controller").set_display_name(f"update-it{it}")
            new_ensemble = weigh.outputs["ensemble_out"]
            new_controller = update.outputs["controller_out"]
            nxt = (new_controller, new_ensemble)
            if it + 1 == iterations:
                evaluate(new_ensemble, new_controller)
            elif early_stop is None:
                iteration(it + 1, *nxt)
            else:
                with dsl.If(
                    weigh.outputs["keep_searching"] == True,  # noqa: E712 - a KFP condition
                    name=f"continue-after-it{it}",
                ):
                    iteration(it + 1, *nxt)
                with dsl.Else(name=f"stop-after-it{it}"):
                    evaluate(new_ensemble, new_controller)

        def evaluate(ensemble: Any, controller: Any) -> None:
            if default_config.finish_epochs > 0:
                finished = finish_ensemble(
                    config_json=config_json,
                    splits=splits,
                    ensemble_in=ensemble,
                    plan_json=plan_json,
                    checkpoint_root=dsl.PIPELINE_ROOT_PLACEHOLDER,
                    **clock,
                )
                _training(finished, placement).set_display_name("finish")
                finished.set_caching_options(CACHING["finish_ensemble"])
                ensemble = finished.outputs["ensemble_out"]
            final = evaluate_ensemble(
                config_json=config_json, splits=splits, ensemble=ensemble, **clock
            )
            _light(final, placement, "evaluate_ensemble").set_display_name("evaluate-ensemble")
            with dsl.If(registry != "", name="if-registry"):
                promote = promote_champion(
                    config_json=config_json,
                    registry=registry,
                    splits=splits,
                    model=final.outputs["model"],
                    controller=controller,
                    promotion_margin=promotion_margin,
                    run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER,
                )
                _light(promote, placement, "promote_champion").set_display_name("promote-champion")

        iteration(0, None, None)

    def rachel_pipeline(
        config_json: str = default_json,
        plan_json: str = "",
        registry: str = "",
        promotion_margin: float = 0.0,
        started_at: float = 0.0,
    ) -> None:
        body(config_json, plan_json, registry, promotion_margin, started_at)

    rachel_pipeline.__doc__ = (
        f"RACHEL architecture search: {iterations} iteration(s) x {candidates} candidate(s) "
        "trained in parallel, an ensemble with a safety net, and one exported model."
    )
    return dsl.pipeline(name=name, description=rachel_pipeline.__doc__)(rachel_pipeline)
