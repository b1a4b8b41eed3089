"""The safety net (section 2.4).

The iteration's best candidate joins the ensemble unless its objective (the validation
loss of the ensemble with it added) is worse than the previously accepted objective by
more than the tolerance (0.01); then it is discarded and the previously accepted
subnetwork is added again, which raises that proven member's weight.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SafetyDecision:
    accept: bool
    candidate_objective: float
    previous_objective: float | None
    tolerance: float

    @property
    def activated(self) -> bool:
        return not self.accept

    def explain(self) -> str:
        if self.previous_objective is None:
            return f"accepted: first member (objective {self.candidate_objective:.4f})"
        verb = "accepted" if self.accept else "safety net: re-added the previous best"
        return (
            f"{verb} (objective {self.candidate_objective:.4f} vs previous "
            f"{self.previous_objective:.4f}, tolerance {self.tolerance})"
        )


def check(
    candidate_objective: float, previous_objective: float | None, tolerance: float = 0.01
) -> SafetyDecision:
    """Accept unless ``candidate_objective > previous_objective + tolerance``."""
    accept = previous_objective is None or candidate_objective <= previous_objective + tolerance
    return SafetyDecision(accept, float(candidate_objective), previous_objective, float(tolerance))
