"""A Markdown report of a finished search: metrics, members, and the iteration log."""

from __future__ import annotations

from typing import Any


def render_report(metrics: dict[str, Any], history: list[dict[str, Any]]) -> str:
    lines = [
        f"# RACHEL search on {metrics['dataset']}",
        "",
        "| metric | value |",
        "|---|---|",
        f"| test accuracy | {metrics['test_accuracy']:.4f} |",
        f"| macro-F1 | {metrics['macro_f1']:.4f} |",
        f"| parameters (ensemble) | {metrics['params']:,} |",
        f"| members (distinct) | {len(metrics['members'])} |",
        f"| safety-net activations | {metrics['safety_net_activations']} |",
        f"| candidates trained (failed) | {metrics['candidates_trained']} "
        f"({metrics['candidates_failed']}) |",
        f"| inference over {metrics['test_examples']:,} test images "
        f"| {metrics['inference_seconds']:.2f} s |",
        f"| wall clock | {metrics['wall_seconds']:.1f} s on {metrics['device']} |",
        f"| seed | {metrics['seed']} |",
        "",
        "## Members",
        "",
        "| candidate | weight | params | architecture |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {m['candidate_id']} | {m['weight']:.3f} | {m['params']:,} | {m['spec']} |"
        for m in metrics["members"]
    ]
    lines += [
        "",
        "## Iterations",
        "",
        "| iter | best candidate | reward | decision |",
        "|---|---|---|---|",
    ]
    for h in history:
        best = h.get("best_candidate")
        reward = h["rewards"].get(best) if best else None
        lines.append(
            f"| {h['iteration']} | {best or '-'} | {reward if reward is None else f'{reward:.4f}'} "
            f"| {h['decision']} |"
        )
    done = metrics.get("finish") or {}
    if done.get("candidate_id"):
        verdict = "added to the ensemble" if done.get("accepted") else "refused"
        lines += [
            "",
            "## Finish",
            "",
            f"{done['from']} continued for {done.get('epochs_run')} epoch(s) "
            f"({done.get('train_seconds') or 0:.0f} s): val_accuracy "
            f"{done.get('val_accuracy') or 0:.4f}, val_loss {done.get('val_loss') or 0:.4f}; "
            f"{verdict}.",
        ]
    return "\n".join(lines) + "\n"
