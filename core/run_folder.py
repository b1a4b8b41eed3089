"""One search's output: where it lives, what an earlier attempt left there, and publishing.

The output of ``rachel search`` is a local folder or a ``gs://`` prefix.  Opening it decides
what the run does:

* missing or empty: a new run;
* it holds ``config.json`` equal to this run's configuration: the run **resumes** from the
  steps already completed there (a finished run is returned as it is);
* it holds a run of another configuration, one started from another replayed plan or
  warm-start controller (``launch.json``, :func:`launch_record`), or files that are not a
  run: a :class:`~rachel.core.errors.ConfigError` (exit 2) that names the difference;
  nothing is overwritten;
* ``restart=True``: the earlier run's artifacts are removed first (only the names a run
  writes; other files beside a run are left alone, and a folder of other files is refused
  as above).

Completeness.  Locally the search writes into the output itself, and every step's folder
is renamed into place complete (:func:`rachel.core.storage.atomic_dir`): a step folder that
exists is a completed step.  For ``gs://`` the search works in a local folder and publishes
each completed step: its objects first, then its name in ``completed.json`` (one object,
replaced whole).  A resumed run downloads exactly the steps that manifest lists, so the
objects of an upload cut short by a kill are never read.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rachel.core import storage
from rachel.core.errors import ConfigError

CONFIG_FILE = "config.json"
LAUNCH_FILE = "launch.json"  # what the run started from besides its configuration
MANIFEST_FILE = "completed.json"
LOG_FILE = "search_log.jsonl"
PLAN_FILE = "plan.json"
FINAL_METRICS = "final/metrics.json"
CHECKPOINTS = ".checkpoints"  # per-epoch training checkpoints of a gs:// run
# Every top-level name a run writes; --restart removes them, config.json (the mark of a
# run) last, so that a restart cut short still leaves a folder a rerun recognises.
RUN_ENTRIES = (
    CHECKPOINTS,
    MANIFEST_FILE,
    LOG_FILE,
    PLAN_FILE,
    "splits.npz",
    "iterations",
    "finish",
    "final",
    LAUNCH_FILE,
    CONFIG_FILE,
)
# Rewritten as the run goes: re-uploaded at every publish, not listed as steps.
LIVE_FILES = (LOG_FILE, PLAN_FILE)


def launch_record(plan: dict[str, Any] | None, controller: str | Path | None) -> dict[str, Any]:
    """What a run starts from besides its configuration, by content: the plan it replays and
    the controller it warm-starts from (a champion's controller is downloaded into a new
    temporary folder each time, so its path says nothing).  A resume with another plan or
    another controller would mix two runs: the first iteration's proposals, or the replayed
    decisions, would differ from those already trained."""
    digest = None
    if controller is not None:
        h = hashlib.sha256()
        root = Path(controller)
        for file in sorted(p for p in root.rglob("*") if p.is_file()):
            h.update(file.relative_to(root).as_posix().encode() + b"\0" + file.read_bytes())
        digest = h.hexdigest()[:16]
    plan_digest = None
    if plan is not None:
        text = json.dumps(plan, sort_keys=True, default=str)
        plan_digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    return {"plan": plan_digest, "warm_start_controller": digest}


def _differences(recorded: dict[str, Any], wanted: dict[str, Any]) -> list[str]:
    keys = sorted(set(recorded) | set(wanted))
    return [k for k in keys if recorded.get(k) != wanted.get(k)]


def _check_launch(uri: str, recorded: Any, launch: dict[str, Any]) -> None:
    recorded = recorded if isinstance(recorded, dict) else {}
    differ = _differences(recorded, launch)
    if differ:
        what = {"plan": "--plan", "warm_start_controller": "--warm-start controller"}
        shown = ", ".join(
            f"{what.get(k, k)} {_given(recorded.get(k))} there, {_given(launch.get(k))} now"
            for k in differ
        )
        raise ConfigError(
            f"output {uri} holds a run started differently ({shown})",
            "rerun with the same --plan and --warm-start to resume it (the registry's "
            "champion may have changed since), pass --restart to discard it, or choose "
            "another --output",
        )


def _given(digest: Any) -> str:
    return f"{digest}" if digest else "none"


@dataclass
class RunFolder:
    """An opened output.  ``work`` is the local folder the search reads and writes."""

    uri: str
    work: Path
    state: str  # "new" | "resume" | "finished"
    completed: list[str] = field(default_factory=list)  # published steps (gs:// only)
    restart_pending: bool = False  # an earlier run to discard once the new one is validated

    @property
    def remote(self) -> bool:
        return storage.is_gcs(self.uri)

    # ------------------------------------------------------------------ opening
    @classmethod
    def open(
        cls,
        uri: str | Path,
        config_json: dict[str, Any],
        *,
        restart: bool = False,
        launch: dict[str, Any] | None = None,
    ) -> RunFolder:
        """Inspect ``uri`` (writing nothing) and say what the run does.  With ``restart`` an
        earlier run is discarded only by :meth:`discard_earlier`, once the new run's dataset
        has been validated.  ``launch`` (:func:`launch_record`) must match the earlier run's
        to resume it (a run from before launch records were kept is not checked)."""
        uri = str(uri)
        if uri.startswith("file://"):
            uri = uri[len("file://") :]
        if not storage.is_gcs(uri) and Path(uri).exists() and not Path(uri).is_dir():
            raise ConfigError(f"output {uri} is a file", "choose a folder (new or empty)")
        names = storage.list_files(uri)
        ours = [n for n in names if n.split("/", 1)[0] in RUN_ENTRIES]
        foreign = [n for n in names if n.split("/", 1)[0] not in RUN_ENTRIES]
        if names and CONFIG_FILE not in names and (foreign or not restart):
            shown = (foreign or names)[0]
            raise ConfigError(
                f"output {uri} is not empty and holds no RACHEL run ({len(names)} file(s), "
                f"e.g. {shown})",
                "choose an empty or new --output",
            )
        if restart and ours:
            folder = cls(uri, Path(uri), "new", restart_pending=True)
            if storage.is_gcs(uri):
                folder.work = Path(tempfile.mkdtemp(prefix="rachel-search-"))
            return folder
        state = "new"
        if CONFIG_FILE in names:
            recorded = storage.read_json(storage.join(uri, CONFIG_FILE))
            if not isinstance(recorded, dict):
                raise ConfigError(
                    f"{uri}/{CONFIG_FILE} is not a RACHEL configuration",
                    "choose another --output, or --restart to discard it",
                )
            differ = _differences(recorded, config_json)
            if differ:
                shown = ", ".join(
                    f"{k}: {recorded.get(k)!r} there, {config_json.get(k)!r} now"
                    for k in differ[:4]
                )
                raise ConfigError(
                    f"output {uri} holds a run of a different configuration ({shown})",
                    "rerun with the same settings to resume it, pass --restart to discard it, "
                    "or choose another --output",
                )
            if launch is not None and LAUNCH_FILE in names:
                _check_launch(uri, storage.read_json(storage.join(uri, LAUNCH_FILE)), launch)
            state = "finished" if FINAL_METRICS in names else "resume"
            if storage.is_gcs(uri) and state == "finished":
                # a bucket's objects may be those of a publish cut short: the manifest decides
                manifest = storage.join(uri, MANIFEST_FILE)
                listed = storage.read_json(manifest) if storage.exists(manifest) else []
                state = "finished" if "final" in listed else "resume"
        if not storage.is_gcs(uri):
            return cls(uri, Path(uri), state)
        folder = cls(uri, Path(tempfile.mkdtemp(prefix="rachel-search-")), state)
        if state != "new":
            folder._download()
        return folder

    def discard_earlier(self) -> None:
        """``--restart``: remove the earlier run's own files (other files stay)."""
        if not self.restart_pending:
            return
        for entry in RUN_ENTRIES:
            storage.delete_tree(storage.join(self.uri, entry))  # a folder (or prefix) ...
            storage.delete(storage.join(self.uri, entry))  # ... or a single file
        self.restart_pending = False

    @property
    def checkpoints(self) -> str | None:
        """Where candidates keep per-epoch checkpoints: beside them locally (None), under the
        bucket for a gs:// run (the local working copy does not outlive a kill)."""
        return storage.join(self.uri, CHECKPOINTS) if self.remote else None

    def _download(self) -> None:
        manifest = storage.join(self.uri, MANIFEST_FILE)
        self.completed = list(storage.read_json(manifest)) if storage.exists(manifest) else []
        for name in (CONFIG_FILE, *LIVE_FILES):
            if storage.exists(storage.join(self.uri, name)):
                storage.download_file(storage.join(self.uri, name), self.work / name)
        for step in self.completed:
            source = storage.join(self.uri, step)
            if step.endswith((".npz", ".json")):
                storage.download_file(source, self.work / step)
            else:
                storage.download_dir(source, self.work / step)

    # ---------------------------------------------------------------- publishing
    def publish(self, step: str) -> None:
        """Make a completed step (a file or folder under ``work``) durable at ``uri``."""
        if not self.remote:
            return  # written in place, complete by construction
        local = self.work / step
        if local.is_dir():
            storage.upload_dir(local, storage.join(self.uri, step))
        else:
            storage.upload_file(local, storage.join(self.uri, step))
        for name in LIVE_FILES:
            if (self.work / name).exists():
                storage.upload_file(self.work / name, storage.join(self.uri, name))
        if step != CONFIG_FILE and step not in self.completed:
            self.completed.append(step)
            storage.write_bytes(
                storage.join(self.uri, MANIFEST_FILE), json.dumps(self.completed).encode()
            )

    def close(self) -> None:
        """Drop the local working copy of a ``gs://`` run (everything completed is published)."""
        if self.remote:
            shutil.rmtree(self.work, ignore_errors=True)
