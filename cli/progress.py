"""One-line progress messages for search events (shared by ``rachel search`` and ``rachel run``).

Events are dicts with an ``event`` key: ``data``, ``candidate`` (a trained candidate's
summary), ``iteration`` (an ensemble-history entry), ``finish_plan`` and ``finish`` (the
finish, :mod:`rachel.core.finish`), ``final``; ``t`` is seconds since start.
"""

from __future__ import annotations

import sys
from typing import Any, TextIO


def format_event(event: dict[str, Any]) -> list[str]:
    kind = event["event"]
    t = f"[{event.get('t', 0.0):7.1f}s]"
    if kind == "data":
        return [
            f"{t} data {event['dataset']}: train {event['train']}, val {event['val']}, "
            f"test {event['test']}, {event['num_classes']} classes, seed {event['seed']}"
        ]
    if kind == "candidate":
        head = f"{t} iteration {event['iteration']} candidate {event['candidate_id']}:"
        if event.get("status") != "ok":
            return [f"{head} FAILED ({event.get('error')})"]
        return [
            f"{head} {event['spec_text']} val_acc {event['val_accuracy']:.4f} "
            f"val_loss {event['val_loss']:.4f} params {event['params']:,} "
            f"epochs {event['epochs_run']} ({event.get('step_seconds', 0):.0f} s)"
        ]
    if kind == "iteration":
        rewards = ", ".join(
            f"{cid}={r:.4f}" if r is not None else f"{cid}=failed"
            for cid, r in event["rewards"].items()
        )
        lines = [
            f"{t} iteration {event['iteration']} rewards: {rewards}",
            f"{t} iteration {event['iteration']} {event['decision']}; "
            f"ensemble = {len(event['members'])} member(s)",
        ]
        if event.get("next"):
            from rachel.core.planner import Decision

            decision = Decision.from_json(event["next"], replayed=bool(event["next"]["replayed"]))
            lines.append(f"{t} plan: {decision.describe()}")
        return lines
    if kind == "finish_plan":
        return [f"{t} plan: {event['plan']}"]
    if kind == "finish":
        if "candidate_id" not in event:
            return []
        if event.get("status") != "ok":
            return [f"{t} finish FAILED ({event.get('error')}); the ensemble stays as it was"]
        verdict = "added to the ensemble" if event["accepted"] else "refused (objective rose)"
        return [
            f"{t} finish: continued {event['from']} for {event['epochs_run']} epoch(s), "
            f"val_acc {event['val_accuracy']:.4f} val_loss {event['val_loss']:.4f}; {verdict}"
        ]
    if kind == "final":
        return [
            f"{t} done: test_accuracy {event['test_accuracy']:.4f}, macro_f1 "
            f"{event['macro_f1']:.4f}, params {event['params']:,}, "
            f"safety-net activations {event['safety_net_activations']}"
        ]
    if kind == "stop":
        return [f"{t} stopping after iteration {event['after_iteration']}: {event['reason']}"]
    if kind == "resume":
        return [
            f"{t} resuming {event['output']}: {event['completed_iterations']} iteration(s) "
            f"complete ({event['elapsed_before']:.0f} s of earlier work)"
        ]
    if kind == "finished_earlier":
        return [
            f"{t} {event['output']} holds this run, finished: test_accuracy "
            f"{event['test_accuracy']:.4f} (--restart to run it again)"
        ]
    if kind == "plan":
        budget = event.get("budget_seconds")
        data = event.get("train_examples") or "all"
        return [
            f"{t} plan: budget {f'{budget:.0f} s' if budget else 'none'}, up to "
            f"{event['iterations']} iteration(s) x {event['candidates']} candidate(s), "
            f"{event['epochs']} epoch(s) on {data} training examples, "
            f"{event['parallel_candidates']} at once"
            + (" (replaying a recorded plan)" if event.get("replaying") else "")
        ]
    return []


def printer(stream: TextIO | None = None) -> Any:
    """An ``on_event`` callback that prints each event's lines to ``stream`` (stdout)."""

    def on_event(event: dict[str, Any]) -> None:
        out = stream or sys.stdout
        for line in format_event(event):
            print(line, file=out, flush=True)

    return on_event
