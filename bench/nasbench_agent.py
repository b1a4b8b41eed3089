"""Train the Ape-X search agent on NAS-Bench-101 and evaluate it against the baselines.

Usage::

    python bench/nasbench_agent.py [--seeds 0] [--train-minutes 15] [--set latent=64 ...]
        [--k-sets 5] [--m-states 2000] [--resamples 2000] [--max-vertices 7]
        [--work /tmp/nasbench-agent] [--output bench/results/nasbench_agent.json]

Ground: the full graph with the bounded XGBoost surrogate (the shared table is partial), as
``rachel nasbench train-agent`` / ``evaluate --agent``.  For every seed (one *run*): train
(checkpoints under ``--work/seed-<s>``, so an interrupted run resumes), evaluate the agent with
random search, random walk and local search through the protocol, measure the environment's
own throughput (random valid actions, same ground), and APPEND the run to the JSON; seeds
already in the JSON are skipped (resumable).  Prints the table at 50/100/150/300 queries with
95 % bootstrap CIs, the training wall time, and the training env steps/s beside the env's.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
from table import print_key_values  # bench/table.py (the script's folder is on sys.path)

REPO = Path(__file__).resolve().parents[1]
BUDGETS = (50, 100, 150, 300)


def env_throughput(ground, n: int, steps: int = 300, num_envs: int = 64, seed: int = 0) -> float:
    """Steps/s of the vector env alone with uniformly random valid actions."""
    from rachel.core.nasbench.agent import epsilon_greedy
    from rachel.core.nasbench.environment import NasBenchVectorEnv

    env = NasBenchVectorEnv(
        ground.index,
        ground.accuracy,
        num_envs=num_envs,
        max_neighbours=n,
        episode_length=16,
        vertex_range=ground.vertex_range,
    )
    obs, _ = env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    zeros = np.zeros((num_envs, n + 1))
    t0 = time.perf_counter()
    for _ in range(steps):
        a = epsilon_greedy(zeros, obs["action_mask"], 1.0, rng)
        obs, *_ = env.step(a)
    return steps * num_envs / (time.perf_counter() - t0)


def compare(table: dict[str, list[dict]], a: str, b: str, budget: int) -> dict:
    ra = next(r for r in table[a] if r["budget"] == budget)
    rb = next(r for r in table[b] if r["budget"] == budget)
    return {
        "budget": budget,
        "a": a,
        "b": b,
        "mean_diff": ra["mean"] - rb["mean"],
        "a_better_non_overlapping": bool(ra["ci_low"] > rb["ci_high"]),
        "gap_to_separation": float(rb["ci_high"] - ra["ci_low"]),
    }


def load_runs(path: Path) -> dict:
    if path.exists():
        return json.loads(path.read_text())
    return {"benchmark": "nasbench_agent", "runs": []}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", default=None)
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--train-minutes", type=float, default=15.0)
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an AgentConfig field (repeatable)",
    )
    parser.add_argument("--k-sets", type=int, default=5)
    parser.add_argument("--m-states", type=int, default=2000)
    parser.add_argument("--resamples", type=int, default=2000)
    parser.add_argument("--max-vertices", type=int, default=7)
    parser.add_argument("--work", default="/tmp/nasbench-agent")
    parser.add_argument("--output", default=str(REPO / "bench" / "results" / "nasbench_agent.json"))
    args = parser.parse_args(argv)

    from rachel.cli.nasbench_commands import parse_agent_settings
    from rachel.core import storage
    from rachel.core.nasbench.agent import AgentConfig
    from rachel.core.nasbench.evaluation import ProtocolConfig
    from rachel.core.nasbench.experiment import ExperimentSettings, prepare_ground
    from rachel.core.nasbench.training import AGENT_NAME, evaluate_agents, train_agent

    out_path = Path(args.output)
    doc = load_runs(out_path)
    done = {int(r["seed"]) for r in doc["runs"]}
    base = parse_agent_settings(args.set)
    settings = ExperimentSettings(
        table=args.table, max_vertices=args.max_vertices, max_neighbours=base.max_neighbours
    )
    protocol = ProtocolConfig(
        k_sets=args.k_sets, m_states=args.m_states, n_resamples=args.resamples, budgets=BUDGETS
    )
    ground = None
    for seed in [int(s) for s in args.seeds.split(",") if s.strip()]:
        if seed in done:
            print(f"seed {seed}: already in {out_path}, skipped")
            continue
        if ground is None:
            t0 = time.perf_counter()
            ground = prepare_ground(settings)
            print(
                f"ground: {ground.estimator}, {len(ground.index):,} cells "
                f"({time.perf_counter() - t0:.1f} s); " + "; ".join(ground.notes.values())
            )
        config = AgentConfig(
            **{**base.to_json(), "seed": seed, "max_seconds": args.train_minutes * 60.0}
        )
        work = storage.join(args.work, f"seed-{seed}")
        t0 = time.perf_counter()
        trained = train_agent(
            settings,
            config,
            work,
            ground=ground,
            on_progress=lambda e: print(json.dumps(e), flush=True),
            progress_every=1000,
        )
        train_wall = time.perf_counter() - t0
        t0 = time.perf_counter()
        ev = evaluate_agents(
            replace_seed(settings, seed),
            protocol,
            [trained["agent"]],
            storage.join(work, "evaluation"),
            ground=ground,
            plots=True,
        )
        eval_wall = time.perf_counter() - t0
        tables = {k: v["table"] for k, v in ev["summary"]["searchers"].items()}
        run = {
            "seed": seed,
            "config": config.to_json(),
            "ground": {
                "estimator": ground.estimator,
                "cells": len(ground.index),
                "surrogate_fingerprint": trained["surrogate_fingerprint"],
            },
            "train_seconds_this_invocation": train_wall,
            "train_seconds": trained["seconds"],
            "env_steps": trained["env_steps"],
            "updates": trained["updates"],
            "train_env_steps_per_second": trained["train_env_steps_per_second"],
            "updates_per_env_step": trained["updates_per_env_step"],
            "env_own_steps_per_second": env_throughput(ground, config.max_neighbours),
            "evaluation_seconds": eval_wall,
            "protocol": {
                "k_sets": args.k_sets,
                "m_states": args.m_states,
                "resamples": args.resamples,
            },
            "tables": tables,
            "improvement": {
                k: {m: v["improvement"].get(m) for m in ("median", "skew", "n")}
                for k, v in ev["summary"]["searchers"].items()
            },
            "comparisons": [
                compare(tables, AGENT_NAME, b, q)
                for b, q in (
                    ("random_search", 100),
                    ("random_search", 300),
                    ("random_walk", 100),
                    ("random_walk", 300),
                    ("local_search", 50),
                )
            ],
            "report": ev["files"]["markdown"],
            "cpus": os.cpu_count(),
            "machine": platform.machine(),
            "python": sys.version.split()[0],
            "caveat": "2-core machine shared with other work; run under nice -n 19",
        }
        doc["runs"].append(run)
        storage.write_json(out_path, doc)
        done.add(seed)
    print_runs(doc)
    return 0


def replace_seed(settings, seed: int):
    from dataclasses import replace

    return replace(settings, seed=seed)


def print_runs(doc: dict) -> None:
    for run in doc["runs"]:
        print(
            f"\nseed {run['seed']}: best found (report metric) at a number of queries, "
            f"mean [95% CI] over runs"
        )
        head = f"{'searcher':<14}" + "".join(f" | {'@' + str(b):>24}" for b in BUDGETS)
        print(head)
        print("-" * len(head))
        for name, rows in run["tables"].items():
            by = {r["budget"]: r for r in rows}
            cells = []
            for b in BUDGETS:
                r = by.get(b)
                cells.append(
                    f"{100 * r['mean']:.2f} [{100 * r['ci_low']:.2f},{100 * r['ci_high']:.2f}]"
                    if r
                    else "n/a"
                )
            print(f"{name:<14}" + "".join(f" | {c:>24}" for c in cells))
        print_key_values(
            [
                ("train wall seconds", f"{run['train_seconds']:.0f}"),
                ("env steps / updates", f"{run['env_steps']:,} / {run['updates']:,}"),
                (
                    "training env steps/s (learner + actors)",
                    f"{run['train_env_steps_per_second']:.1f}",
                ),
                ("env's own steps/s (random actions)", f"{run['env_own_steps_per_second']:.0f}"),
                ("evaluation seconds", f"{run['evaluation_seconds']:.0f}"),
            ]
            + [
                (
                    f"agent vs {c['b']} @{c['budget']}",
                    f"{100 * c['mean_diff']:+.2f} pts, "
                    f"CIs separate: {c['a_better_non_overlapping']}",
                )
                for c in run["comparisons"]
            ]
        )


if __name__ == "__main__":
    sys.exit(main())
