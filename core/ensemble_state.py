"""The growing ensemble as a small JSON artifact, and trained-candidate artifacts.

A trained candidate (output of ``train_candidate``)::

    candidate.json     the proposal (base spec, decisions, full spec)
    metrics.json       status "ok" | "failed", training metrics or the error
    model.keras        the trained subnetwork (status ok only)
    val_logits.npy     its logits on the validation split (status ok only)

An ensemble (output of ``weigh_ensemble``, input of the next iteration) is one file::

    ensemble.json      format 2: members (in order, a re-added member appears again), each
                       with the URI of its trained-candidate artifact; weights, objective of
                       the last accepted state, per-iteration history (rewards, best
                       candidate, safety-net decision), seeds, timings

Members are kept **by reference**, not copied: an iteration writes a few kilobytes, so a
run's ensemble state grows linearly with the iterations (format 1 copied every member's
folder into every ensemble, which grew with their square).  A member's ``uri`` is

* a ``gs://`` URI: on a Kubeflow cluster the component records its input artifact's
  ``.uri``, because a later task's pod holds only its own declared inputs;
* a path relative to the ensemble's own folder, written whenever both are local
  (``rachel search``, kfp.local): a run folder stays valid when it is moved, and
  ``rachel search --output gs://`` resumes in a fresh local copy, or a reader opens the
  ensemble straight from the bucket, with the same layout;
* an absolute local path otherwise.

Everything that reads a member (its validation logits, its model) goes through
:mod:`rachel.core.storage`, so local paths and ``gs://`` work alike.  A member whose
artifact has been deleted is an :class:`~rachel.core.errors.ArtifactError` naming the
member and its URI.  Reading ``ensemble.json`` alone (the controller update, the next
generation, the resume check) touches no member.

No cached copy of the members' logits is kept in the ensemble, by measurement
(``bench/storage_growth.py``, 10 iterations, 2,000 validation images): reading the ten
members' logits through their references takes 1.3 ms locally and 36 ms from a GCS
emulator (one stacked copy: 0.14 ms and 6 ms), next to ~20 s of training per iteration
there; the copy would have added ``members x val x classes`` floats (0.8 MB at ten
members) to every ensemble, growing with the square of the iterations again.

An older format-1 ensemble (members copied under ``members/<candidate_id>/``) is still
read: its members are referenced where they lie, inside that artifact, so a newer state
written from it references them there.  (On a cluster that cannot happen across versions:
the KFP cache key includes the component's code.)  A format newer than this code reads is
an :class:`~rachel.core.errors.ArtifactError`.

Each step writes its folder with :func:`rachel.core.storage.atomic_dir`, so no step ever
reads half of one.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import posixpath
from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from rachel.core import storage
from rachel.core.errors import ArtifactError, StorageError
from rachel.core.search_space import Candidate

CANDIDATE_FILE = "candidate.json"
METRICS_FILE = "metrics.json"
MODEL_FILE = "model.keras"
VAL_LOGITS_FILE = "val_logits.npy"
ENSEMBLE_FILE = "ensemble.json"
MEMBERS_DIR = "members"  # format 1 only: members copied inside the ensemble
FORMAT = 2


def _read(uri: str, what: str, hint: str) -> bytes:
    """The bytes at ``uri``; a missing object is an ArtifactError (other storage errors,
    such as a refused permission, stay StorageErrors)."""
    try:
        return storage.read_bytes(uri)
    except StorageError as err:
        if storage.exists(uri):
            raise
        raise ArtifactError(f"{what} {uri} is missing", hint) from err


def _read_json(uri: str, what: str, hint: str = "re-run the step that writes it") -> Any:
    data = _read(uri, what, hint)
    try:
        return json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ArtifactError(f"{what} {uri} is unreadable ({err})", hint) from err


def _load_npy(data: bytes, uri: str) -> np.ndarray:
    try:
        return np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise ArtifactError(
            f"{uri} is not a readable .npy array ({err})", "re-run train_candidate"
        ) from err


# ------------------------------------------------------------------ member references
def _check_reference(uri: str) -> None:
    if "://" in uri and not storage.is_gcs(uri):
        raise StorageError(
            f"member reference {uri!r} uses a scheme RACHEL cannot read (only gs:// URIs and "
            "local paths)",
            "run the pipeline with a gs:// pipeline root (rachel submit --pipeline-root "
            "gs://BUCKET/PREFIX)",
        )


def resolve_reference(reference: str, base: str) -> str:
    """The member URI ``reference`` recorded in the ensemble at ``base``: absolute
    references as they are, relative ones joined to ``base`` (lexically, ``..`` included)."""
    _check_reference(reference)
    if storage.is_gcs(reference) or os.path.isabs(reference):
        return reference
    if storage.is_gcs(base):
        bucket, blob = storage.split_gcs(base)
        joined = posixpath.normpath(posixpath.join(blob, reference))
        if joined.startswith(".."):
            raise ArtifactError(f"member reference {reference!r} leaves bucket gs://{bucket}")
        return f"gs://{bucket}/{joined}"
    return os.path.normpath(os.path.join(os.path.abspath(base), reference))


def relative_reference(uri: str, base: str | None) -> str:
    """How ensemble ``base`` records member ``uri``: relative when both are local paths that
    share a folder below the file-system root, else ``uri`` itself."""
    _check_reference(uri)
    if base is None or storage.is_gcs(uri) or storage.is_gcs(base):
        return uri
    target, origin = os.path.abspath(uri), os.path.abspath(base)
    common = os.path.commonpath([target, origin])
    if os.path.dirname(common) == common:  # only the file-system root is shared
        return target
    return os.path.relpath(target, origin)


def absolute_reference(uri: str | os.PathLike[str]) -> str:
    """A member URI as the state keeps it in memory: gs:// as it is, local paths absolute."""
    uri = str(uri)
    _check_reference(uri)
    return uri if storage.is_gcs(uri) else os.path.abspath(uri)


# ------------------------------------------------------------------ trained candidates
@dataclass
class TrainedCandidate:
    uri: str  # a local folder or gs:// prefix
    candidate: Candidate
    metrics: dict[str, Any]

    @property
    def ok(self) -> bool:
        return self.metrics.get("status") == "ok"

    def val_logits(self) -> np.ndarray:
        uri = storage.join(self.uri, VAL_LOGITS_FILE)
        return _load_npy(_read(uri, "validation logits", "re-run train_candidate"), uri)

    @classmethod
    def read(cls, uri: str | Path) -> TrainedCandidate:
        uri = str(uri)
        cand = Candidate.from_json(_read_json(storage.join(uri, CANDIDATE_FILE), "candidate"))
        metrics = _read_json(storage.join(uri, METRICS_FILE), "candidate metrics")
        if metrics.get("status") == "ok":
            for name in (MODEL_FILE, VAL_LOGITS_FILE):
                if not storage.exists(storage.join(uri, name)):
                    raise ArtifactError(
                        f"trained candidate {uri} lacks {name}", "re-run train_candidate"
                    )
        return cls(uri, cand, metrics)


# ---------------------------------------------------------------------------- ensemble
@dataclass
class EnsembleState:
    """What the search has accepted so far: plain JSON, members by reference.

    ``members`` entries are ``{candidate_id, spec, reused, uri}``; in memory ``uri`` is
    absolute (resolved against the folder the state was read from), on disk it is written
    relative where it can be (:func:`relative_reference`).
    """

    members: list[dict[str, Any]] = field(default_factory=list)
    weights: list[float] = field(default_factory=list)
    objective: float | None = None  # objective of the last accepted state
    best_spec: dict[str, Any] | None = None  # the subnetwork the next candidates extend
    best_candidate_id: str | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    started_at: float | None = None
    training_seconds: float = 0.0
    candidates_trained: int = 0
    candidates_failed: int = 0
    finish: dict[str, Any] | None = None  # the finish's record (rachel.core.finish)
    folder: str | None = None  # where it was read from (not written)

    @property
    def safety_net_activations(self) -> int:
        return sum(1 for h in self.history if h.get("safety_net_activated"))

    def member_uri(self, candidate_id: str) -> str:
        for member in self.members:
            if member["candidate_id"] == candidate_id:
                return str(member["uri"])
        raise KeyError(candidate_id)

    def _member_file(self, candidate_id: str, name: str) -> str:
        return storage.join(self.member_uri(candidate_id), name)

    def _missing(self, candidate_id: str, name: str) -> ArtifactError:
        where = f" of ensemble {self.folder}" if self.folder else ""
        return ArtifactError(
            f"member {candidate_id}{where}: its trained-candidate artifact "
            f"{self.member_uri(candidate_id)} has no {name} (deleted?)",
            "members are kept by reference: restore that artifact, or run the search again "
            "from the iteration that trained it (rachel search --restart)",
        )

    def member_logits(self) -> list[np.ndarray]:
        """Each member's validation logits, in member order (a re-added member's are read
        once and appear again)."""
        loaded: dict[str, np.ndarray] = {}
        for member in self.members:
            cid = member["candidate_id"]
            if cid in loaded:
                continue
            uri = self._member_file(cid, VAL_LOGITS_FILE)
            try:
                data = _read(uri, "validation logits", "")
            except ArtifactError as err:
                raise self._missing(cid, VAL_LOGITS_FILE) from err
            loaded[cid] = _load_npy(data, uri)
        return [loaded[m["candidate_id"]] for m in self.members]

    @contextlib.contextmanager
    def member_file(self, candidate_id: str, name: str) -> Iterator[Path]:
        """A local path holding one of a member's files (a temporary copy for gs://)."""
        uri = self._member_file(candidate_id, name)
        if not storage.exists(uri):
            raise self._missing(candidate_id, name)
        with storage.local_copy(uri) as local:
            yield local

    def to_json(self, location: str | os.PathLike[str] | None = None) -> dict[str, Any]:
        """The JSON record; member URIs relative to ``location`` (the ensemble's folder)
        where :func:`relative_reference` allows."""
        base = None if location is None else str(location)
        return {
            "format": FORMAT,
            "members": [
                {**m, "uri": relative_reference(str(m["uri"]), base)} for m in self.members
            ],
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
            **({"finish": self.finish} if self.finish is not None else {}),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], folder: str) -> EnsembleState:
        """The state recorded in ``data``, read from the ensemble at ``folder``."""
        data = dict(data)
        version = data.pop("format", 1)
        if version not in (1, FORMAT):
            raise ArtifactError(
                f"ensemble {folder} has format {version!r}; this RACHEL reads formats 1 and "
                f"{FORMAT}",
                "read it with the RACHEL version that wrote it, or upgrade",
            )
        data.pop("safety_net_activations", None)
        known = {f.name for f in fields(cls)} - {"folder"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ArtifactError(
                f"ensemble {folder} has unknown fields {unknown}", "re-run the step that writes it"
            )
        members = []
        for member in data.get("members", []):
            if not isinstance(member, dict) or "candidate_id" not in member:
                raise ArtifactError(f"ensemble {folder} has a malformed member {member!r}")
            if version == 1:  # copied inside the ensemble
                uri = storage.join(folder, MEMBERS_DIR, member["candidate_id"])
            elif "uri" in member:
                uri = resolve_reference(str(member["uri"]), folder)
            else:
                raise ArtifactError(
                    f"ensemble {folder}: member {member['candidate_id']} has no uri",
                    "re-run the step that writes it",
                )
            members.append({**member, "uri": uri})
        data["members"] = members
        return cls(**data, folder=folder)

    @classmethod
    def read(cls, folder: str | os.PathLike[str] | None) -> EnsembleState:
        """The state in ``folder`` (a local folder or ``gs://`` prefix); reads
        ``ensemble.json`` only.  An empty ensemble when ``folder`` is None or empty."""
        if folder is None:
            return cls()
        folder = str(folder)
        uri = storage.join(folder, ENSEMBLE_FILE)
        if not storage.exists(uri):
            if storage.list_files(folder):
                raise ArtifactError(f"{folder} is not an ensemble artifact (no {ENSEMBLE_FILE})")
            return cls()
        data = _read_json(uri, "ensemble state")
        if not isinstance(data, dict):
            raise ArtifactError(
                f"ensemble state {uri} is not a JSON object", "re-run the step that writes it"
            )
        return cls.from_json(data, folder)

    def write(self, folder: Path, location: str | os.PathLike[str] | None = None) -> None:
        """Write ``ensemble.json`` into ``folder`` (a fresh temporary folder that becomes
        ``location``, by default ``folder`` itself); members are recorded, not copied."""
        location = str(location if location is not None else folder)
        payload = json.dumps(self.to_json(location), indent=2, sort_keys=True)
        (folder / ENSEMBLE_FILE).write_text(payload)
        self.folder = location
