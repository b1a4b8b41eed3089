"""When the search stops early: one pure function for both runners.

``rachel search`` (:mod:`rachel.core.search`) and the pipeline's weigh step
(``components/weigh_ensemble.py``) both call :func:`stop_reason` on the ensemble state's
history after weighing an iteration, so the two stop at the same iteration for the same
reason.  The rules, in the order they are checked:

1. the wall-clock planner decided the next iteration does not fit the time budget
   (:func:`rachel.core.planner.keep_searching`);
2. the safety net has fired ``max_safety_net_activations`` times (0 = never);
3. an iteration's best candidate reached ``target_accuracy`` on the validation split
   (0 = never).

Everything is read from the history the ensemble state records (no counter is kept
anywhere else), so the function can be tested with hand-written histories.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rachel.core import planner


def safety_net_activations(history: Sequence[Mapping[str, Any]]) -> int:
    return sum(1 for h in history if h.get("safety_net_activated"))


def best_val_accuracy(entry: Mapping[str, Any]) -> float:
    """The best validation accuracy among one iteration's candidates (0 when none trained)."""
    values = [c.get("val_accuracy") for c in entry.get("candidates", {}).values()]
    return float(max((v for v in values if v is not None), default=0.0))


def stop_reason(
    history: Sequence[Mapping[str, Any]],
    *,
    max_safety_net_activations: int = 0,
    target_accuracy: float = 0.0,
) -> str | None:
    """Why the search stops after the last iteration of ``history``, or None to go on."""
    if not history:
        return None
    if not planner.keep_searching(history):
        return "time budget: the next iteration would not fit"
    fired = safety_net_activations(history)
    if 0 < max_safety_net_activations <= fired:
        return f"the safety net fired {fired} time(s) (max_safety_net_activations)"
    best = best_val_accuracy(history[-1])
    if 0 < target_accuracy <= best:
        return f"a candidate reached validation accuracy {best:.4f} (target_accuracy)"
    return None


def config_stop_reason(config: Any, history: Sequence[Mapping[str, Any]]) -> str | None:
    """:func:`stop_reason` with the rules of a :class:`~rachel.core.config.SearchConfig`."""
    return stop_reason(
        history,
        max_safety_net_activations=config.max_safety_net_activations,
        target_accuracy=config.target_accuracy,
    )
