"""The growing ensemble as an artifact folder, and trained-candidate artifacts.

A trained candidate (output of ``train_candidate``)::

    candidate.json     the proposal (base spec, decisions, full spec)
    metrics.json       status "ok" | "failed", training metrics or the error
    model.keras        the trained subnetwork (status ok only)
    val_logits.npy     its logits on the validation split (status ok only)

An ensemble (output of ``weigh_ensemble``, input of the next iteration)::

    ensemble.json      members (in order, a re-added member appears again), weights,
                       objective of the last accepted state, per-iteration history
                       (rewards, best candidate, safety-net decision), seeds, timings
    members/<candidate_id>/{model.keras, val_logits.npy, candidate.json, metrics.json}

Each step writes its folder with :func:`rachel.core.storage.atomic_dir`, so no step ever
reads half of one.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rachel.core.errors import ArtifactError
from rachel.core.search_space import Candidate

CANDIDATE_FILE = "candidate.json"
METRICS_FILE = "metrics.json"
MODEL_FILE = "model.keras"
VAL_LOGITS_FILE = "val_logits.npy"
ENSEMBLE_FILE = "ensemble.json"
MEMBERS_DIR = "members"


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ArtifactError(
            f"{what} {path} is missing or unreadable ({err})", "re-run the step that writes it"
        ) from err


@dataclass
class TrainedCandidate:
    folder: Path
    candidate: Candidate
    metrics: dict[str, Any]

    @property
    def ok(self) -> bool:
        return self.metrics.get("status") == "ok"

    def val_logits(self) -> np.ndarray:
        return np.load(self.folder / VAL_LOGITS_FILE)

    @classmethod
    def read(cls, folder: str | Path) -> TrainedCandidate:
        folder = Path(folder)
        cand = Candidate.from_json(_read_json(folder / CANDIDATE_FILE, "candidate"))
        metrics = _read_json(folder / METRICS_FILE, "candidate metrics")
        if metrics.get("status") == "ok":
            for name in (MODEL_FILE, VAL_LOGITS_FILE):
                if not (folder / name).exists():
                    raise ArtifactError(
                        f"trained candidate {folder} lacks {name}", "re-run train_candidate"
                    )
        return cls(folder, cand, metrics)


@dataclass
class EnsembleState:
    """What the search has accepted so far (a plain-JSON record plus member folders)."""

    members: list[dict[str, Any]] = field(default_factory=list)  # {candidate_id, spec, reused}
    weights: list[float] = field(default_factory=list)
    objective: float | None = None  # objective of the last accepted state
    best_spec: dict[str, Any] | None = None  # the subnetwork the next candidates extend
    best_candidate_id: str | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    started_at: float | None = None
    training_seconds: float = 0.0
    candidates_trained: int = 0
    candidates_failed: int = 0
    folder: Path | None = None

    @property
    def safety_net_activations(self) -> int:
        return sum(1 for h in self.history if h.get("safety_net_activated"))

    def member_folder(self, candidate_id: str) -> Path:
        assert self.folder is not None
        return self.folder / MEMBERS_DIR / candidate_id

    def member_logits(self) -> list[np.ndarray]:
        return [
            np.load(self.member_folder(m["candidate_id"]) / VAL_LOGITS_FILE) for m in self.members
        ]

    def to_json(self) -> dict[str, Any]:
        return {
            "format": 1,
            "members": self.members,
            "weights": self.weights,
            "objective": self.objective,
            "best_spec": self.best_spec,
            "best_candidate_id": self.best_candidate_id,
            "history": self.history,
            "started_at": self.started_at,
            "training_seconds": self.training_seconds,
            "candidates_trained": self.candidates_trained,
            "candidates_failed": self.candidates_failed,
            "safety_net_activations": self.safety_net_activations,
        }

    @classmethod
    def read(cls, folder: str | Path | None) -> EnsembleState:
        """The state in ``folder``; an empty ensemble when ``folder`` is None or empty."""
        if folder is None or not (Path(folder) / ENSEMBLE_FILE).exists():
            if folder is not None and Path(folder).exists() and any(Path(folder).iterdir()):
                raise ArtifactError(f"{folder} is not an ensemble artifact (no {ENSEMBLE_FILE})")
            return cls()
        folder = Path(folder)
        data = _read_json(folder / ENSEMBLE_FILE, "ensemble state")
        data.pop("format", None)
        data.pop("safety_net_activations", None)
        state = cls(**data)
        state.folder = folder
        for member in state.members:
            if not (state.member_folder(member["candidate_id"]) / VAL_LOGITS_FILE).exists():
                raise ArtifactError(f"ensemble {folder} lacks member {member['candidate_id']}")
        return state

    def write(self, folder: Path, new_members: dict[str, Path]) -> None:
        """Write into ``folder`` (a fresh temporary folder): JSON plus every member's files.

        ``new_members`` maps candidate ids to trained-candidate folders not yet copied.
        """
        for member in {m["candidate_id"] for m in self.members}:
            source = new_members.get(member) or self.member_folder(member)
            target = folder / MEMBERS_DIR / member
            if not target.exists():
                shutil.copytree(source, target)
        (folder / ENSEMBLE_FILE).write_text(json.dumps(self.to_json(), indent=2, sort_keys=True))
        self.folder = folder
