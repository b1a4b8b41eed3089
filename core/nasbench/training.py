"""Train a search agent on a NAS-Bench ground and evaluate it: the entry points that the CLI
(``rachel nasbench train-agent`` / ``evaluate --agent``), the pipeline's components and the
benchmark all call, with paths and plain parameters.

* :func:`train_agent` - :func:`experiment.prepare_ground` (the full graph with the surrogate
  where the table is partial), then :func:`apex.train`; the agent artifact records the ground
  (estimator, surrogate fingerprint, cells, vertex range) in its ``meta``, and the surrogate is
  saved beside it (``<output>/surrogate.json``) so that evaluation scores with the same reward.
* :func:`evaluate_agents` - loads agents (agent folders or registry URIs), checks that each
  was trained against the surrogate it is evaluated with (same fingerprint; a different
  ground is allowed and noted), and runs them with the baselines through
  :func:`experiment.run_experiment`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from rachel.core import storage
from rachel.core.errors import ConfigError
from rachel.core.nasbench import apex
from rachel.core.nasbench import evaluation as ev
from rachel.core.nasbench.agent import AgentConfig
from rachel.core.nasbench.experiment import (
    ExperimentSettings,
    Ground,
    prepare_ground,
    run_experiment,
)
from rachel.core.nasbench.policy import AgentSearcher, TrainedAgent

AGENT_NAME = "apex_agent"


def ground_meta(ground: Ground) -> dict[str, Any]:
    return {
        "estimator": ground.estimator,
        "mode": ground.mode,
        "cells": len(ground.index),
        "vertex_range": list(ground.vertex_range),
        "surrogate_fingerprint": ground.surrogate.fingerprint if ground.surrogate else None,
        "notes": dict(ground.notes),
    }


def train_agent(
    settings: ExperimentSettings,
    config: AgentConfig,
    output: str,
    *,
    ground: Ground | None = None,
    resume: bool = True,
    on_progress: Callable[[dict[str, Any]], None] | None = None,
    progress_every: int = 500,
) -> dict[str, Any]:
    """Train on the settings' ground; write checkpoints, ``agent/`` and ``surrogate.json``."""
    if config.max_neighbours != settings.max_neighbours:
        settings = replace(settings, max_neighbours=config.max_neighbours)
    ground = ground or prepare_ground(settings)
    if ground.mode == "real_subset":
        raise ConfigError(
            "training on the real subset is a degenerate graph",
            "use estimator auto (the surrogate on the full graph) or tabular",
        )
    surrogate_uri = None
    if ground.surrogate is not None:
        surrogate_uri = storage.join(output, "surrogate.json")
        if not storage.exists(surrogate_uri):
            ground.surrogate.save(surrogate_uri)
    t0 = time.perf_counter()
    result = apex.train(
        config,
        ground.index,
        ground.accuracy,
        output,
        vertex_range=ground.vertex_range,
        resume=resume,
        meta={"ground": ground_meta(ground), "table": settings.table},
        on_progress=on_progress,
        progress_every=progress_every,
    )
    summary = {
        "agent": result.agent_uri,
        "surrogate": surrogate_uri,
        "wall_seconds": time.perf_counter() - t0,
        **ground_meta(ground),
        **{k: v for k, v in result.state.items() if k != "history"},
    }
    storage.write_json(
        storage.join(output, "training.json"),
        {**summary, "history": result.history, "config": config.to_json()},
    )
    return summary


def searcher_for(
    agent: TrainedAgent, ground: Ground, num_envs: int = 256, epsilon: float | None = None
) -> AgentSearcher:
    return AgentSearcher(
        agent,
        ground.index,
        ground.accuracy,
        ground.report,
        vertex_range=ground.vertex_range,
        num_envs=num_envs,
        epsilon=epsilon,
    )


def check_ground(agent: TrainedAgent, ground: Ground) -> str | None:
    """A note when the agent was trained on another reward than this ground's (else None)."""
    trained = (agent.meta.get("ground") or {}).get("surrogate_fingerprint")
    here = ground.surrogate.fingerprint if ground.surrogate else None
    if trained == here:
        return None
    return (
        f"the agent was trained against surrogate {str(trained)[:12]} and is evaluated on "
        f"{'surrogate ' + here[:12] if here else ground.estimator}"
    )


def evaluate_agents(
    settings: ExperimentSettings,
    protocol: ev.ProtocolConfig,
    agent_uris: Sequence[str],
    output: str,
    *,
    ground: Ground | None = None,
    plots: bool = True,
    num_envs: int = 256,
    epsilon: float | None = None,
) -> dict[str, Any]:
    """The agents (one searcher with ``len(agent_uris)`` agents) against the baselines;
    ``epsilon`` overrides the agents' ``eval_epsilon`` (0 = greedy)."""
    from rachel.core.nasbench.registry import resolve_agent, surrogate_beside

    agent_uris = [resolve_agent(u) for u in agent_uris]
    agents = [TrainedAgent.load(u) for u in agent_uris]
    if not agents:
        raise ConfigError("no agent to evaluate", "pass --agent URI")
    n = {a.config.max_neighbours for a in agents}
    if len(n) != 1:
        raise ConfigError(
            f"the agents see different numbers of neighbours {sorted(n)}",
            "evaluate agents trained with the same max_neighbours together",
        )
    settings = replace(settings, max_neighbours=n.pop())
    if ground is None and settings.estimator in ("auto", "surrogate") and not settings.surrogate:
        # on the table it was trained on, score with the surrogate the (first) agent was
        # trained against when it is beside it; a user's own table gets its own estimator
        beside = surrogate_beside(agent_uris[0])
        same_table = (settings.table or None) == (agents[0].meta.get("table") or None)
        if beside is not None and same_table:
            settings = replace(settings, surrogate=beside)
    ground = ground or prepare_ground(settings)
    for i, agent in enumerate(agents):
        note = check_ground(agent, ground)
        if note:
            ground.notes[f"agent_{i}"] = note
    searchers = [searcher_for(a, ground, num_envs, epsilon) for a in agents]
    out = run_experiment(
        settings,
        replace(protocol, n_agents=len(agents)),
        output,
        ground=ground,
        agents={AGENT_NAME: searchers},
        plots=plots,
    )
    out["agent_env_steps"] = int(sum(s.env_steps for s in searchers))
    out["agent_search_seconds"] = float(sum(s.seconds for s in searchers))
    return out
