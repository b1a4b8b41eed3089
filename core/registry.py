"""The champion registry of recurring searches: the model to beat, the gate, warm start.

A search that runs every week (from CI/CD) publishes its model only if it beats the
champion, the best model published so far, on the same test split.  The registry lives
under one URI, a local folder, ``file://PATH`` or ``gs://BUCKET/PREFIX``, read and written
through :mod:`rachel.core.storage`::

    champion.json                    the pointer (written LAST): version, test accuracy,
                                     test-split fingerprint, previous version
    versions/<version-id>/
        model/                       the search's final/ folder: model.keras, saved_model/,
                                     metrics.json, report.md, search_log.json
        controller/                  the controller checkpoint (controller.json, ...)
        metrics.json                 the final metrics plus the test-split fingerprint
        promotion.json               the gate's record that published this version
        MANIFEST.json                every file above with its size and sha256 (sealed last)
    history/<version-id>.json        one record per gate run, promoted or kept (append-only)

Rules, and why:

* **Publish, then point.**  A promotion uploads the version's files (streamed from disk,
  one object each), then its ``promotion.json`` and ``MANIFEST.json``, and only then
  replaces ``champion.json``.  A failure anywhere before the pointer leaves the previous
  champion in place; a version folder that ``champion.json`` does not name (a failed upload,
  a lost race) is never read and is safe to delete.  Readers check the manifest's sizes
  and hashes of what they download.
* **One winner.**  The pointer is replaced with a conditional write
  (:func:`rachel.core.storage.write_if_unchanged`: ``if_generation_match`` on GCS, a
  ``flock``-guarded compare-and-rename locally).  When another run replaced the pointer
  since it was read, the gate reads the new champion and decides again (up to
  :data:`MAX_ATTEMPTS` times): two concurrent promotions cannot both win, and the one that
  loses is compared with the one that won.  (A re-read that finds its own version already
  there, a retried request whose first try landed, counts as the promotion it is.)
* **Re-running is harmless.**  A final folder whose ``promotion.json`` says it was promoted
  into this registry and is still champion is not gated again (a re-run of a finished
  search, a retried CI job); any other re-run of the same model ties the champion.
* **Ties keep the champion.**  See :func:`decide_promotion`: the new model must be
  strictly better *and* at least ``margin`` better.
* **A kept champion changes nothing** in ``champion.json`` or ``versions/``; the
  comparison is recorded in ``history/`` (so the weekly trend of the runs that lost is
  kept too) and in the run's own ``promotion.json``.
* **Same test split or no comparison.**  Accuracies on different test sets cannot be
  compared: a changed test-split fingerprint is a :class:`~rachel.core.errors.RegistryError`,
  never a silent promotion.

Version ids are ``YYYYMMDDTHHMMSSffffffZ-<config hash>-<random>`` (UTC, microseconds):
fixed width, so they sort by time as strings; the 8-hex hash of the run's information (its
configuration hash and seed) groups runs of one configuration; 4 random hex digits keep two
runs of one configuration in the same microsecond apart.

No TensorFlow and no kfp here: the gate copies files, it never loads a model.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import math
import secrets
import tempfile
import urllib.parse
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from rachel.core import storage
from rachel.core.controller import STATE_FILE as CONTROLLER_STATE_FILE
from rachel.core.errors import ArtifactError, ConfigError, ConflictError, RegistryError

FORMAT = 1
POINTER_FILE = "champion.json"
VERSIONS_DIR = "versions"
HISTORY_DIR = "history"
MODEL_DIR = "model"
CONTROLLER_DIR = "controller"
METRICS_FILE = "metrics.json"
MANIFEST_FILE = "MANIFEST.json"
RECORD_FILE = "promotion.json"
REPORT_FILE = "promotion.md"
MAX_ATTEMPTS = 5
# The controller settings that shape its policy (decision steps, width mask, network or none).
POLICY_SETTINGS = ("kind", "max_new_layers", "max_width")
_EPS = 1e-9  # accuracies are multiples of 1/len(test): far coarser than this
_FINGERPRINT_TAG = b"rachel.test_split.v1\n"


# ------------------------------------------------------------------ fingerprint
def test_split_fingerprint(y_test: np.ndarray, x_test: np.ndarray) -> str:
    """sha256 (64 hex digits) of the test split: labels, then images.

    For each array, in that order, the hash takes one header line
    ``<name>:<dtype, little-endian>:<shape>`` and then the array's bytes in C order,
    little-endian.  It depends only on the values, dtypes and shapes (not on the memory
    layout or the machine's byte order): the same split gives the same fingerprint on
    every run, and one changed pixel, label, example order or dtype gives another.
    """
    digest = hashlib.sha256(_FINGERPRINT_TAG)
    for name, raw in (("y_test", y_test), ("x_test", x_test)):
        array = np.asarray(raw)
        if array.dtype.kind not in "biuf":
            raise ArtifactError(
                f"{name} has dtype {array.dtype}, which has no stable fingerprint",
                "pass the numeric test arrays of the splits artifact",
            )
        array = np.ascontiguousarray(array.astype(array.dtype.newbyteorder("<"), copy=False))
        digest.update(f"{name}:{array.dtype.str}:{list(array.shape)}\n".encode())
        digest.update(array.data.cast("B"))
    return digest.hexdigest()


def splits_fingerprint(splits_uri: str | Path) -> str:
    """The test-split fingerprint of a splits artifact (``splits.npz``)."""
    from rachel.core.data.splits import DatasetSplits

    splits = DatasetSplits.load(str(splits_uri), min_per_class=0)
    return test_split_fingerprint(splits.y_test, splits.x_test)


# ------------------------------------------------------------------ the decision
def check_margin(margin: float) -> float:
    margin = float(margin)
    if not (math.isfinite(margin) and 0.0 <= margin < 1.0):
        raise ConfigError(
            f"the promotion margin must be within [0, 1), got {margin}",
            "it is a test-accuracy gain, e.g. 0.005 for half a point; 0 = any gain",
        )
    return margin


def _accuracy(metrics: Mapping[str, Any], what: str) -> float:
    value = metrics.get("test_accuracy")
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not 0.0 <= float(value) <= 1.0
    ):
        raise ArtifactError(
            f"{what} has no valid test_accuracy (got {value!r})",
            "pass the metrics.json written by the final evaluation",
        )
    return float(value)


@dataclasses.dataclass(frozen=True)
class PromotionDecision:
    """The gate's verdict on one run against the champion (``None`` fields: no champion)."""

    promoted: bool
    reason: str
    new_test_accuracy: float
    champion_test_accuracy: float | None
    champion_version: str | None
    margin: float
    test_split_fingerprint: str

    @property
    def outcome(self) -> str:
        return "promoted" if self.promoted else "kept"

    def to_json(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "decision": self.outcome}

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> PromotionDecision:
        return cls(**{f.name: raw[f.name] for f in dataclasses.fields(cls)})


def decide_promotion(
    new_metrics: Mapping[str, Any],
    champion: Mapping[str, Any] | None,
    margin: float,
    fingerprint: str,
) -> PromotionDecision:
    """Promote the new model when there is no champion, or when it is strictly better than
    the champion on test accuracy *and* by at least ``margin``::

        promote  <=>  gain > 0  and  gain >= margin,   gain = new - champion

    So a tie never replaces the champion (with ``margin`` 0, any real gain does), and a gain
    of exactly ``margin`` is enough.  Comparisons allow 1e-9 for floating-point noise.

    ``champion`` is the registry's pointer (``champion.json``) or ``None``.  A champion
    measured on another test split (its ``test_split_fingerprint`` differs from
    ``fingerprint``) raises :class:`RegistryError`: the two accuracies do not compare.
    """
    margin = check_margin(margin)
    new = _accuracy(new_metrics, "the new model's metrics")
    if champion is None:
        return PromotionDecision(
            True,
            "no champion yet: this model becomes the first champion",
            new_test_accuracy=new,
            champion_test_accuracy=None,
            champion_version=None,
            margin=margin,
            test_split_fingerprint=fingerprint,
        )
    version = str(champion.get("version"))
    theirs = champion.get("test_split_fingerprint")
    if theirs != fingerprint:
        raise RegistryError(
            f"the test split changed: champion {version} was measured on test split "
            f"{str(theirs)[:12]}..., this run on {fingerprint[:12]}...; accuracies on different "
            "test sets cannot be compared",
            "keep the same dataset, seed and split sizes (the same test split), or use a new "
            "registry URI to start a new line of champions",
        )
    old = _accuracy(champion, f"champion {version}")
    gain = new - old
    promoted = gain > _EPS and gain >= margin - _EPS
    if promoted:
        reason = f"{new:.4f} beats the champion's {old:.4f} by {gain:+.4f} (margin {margin:.4f})"
    elif abs(gain) <= _EPS:
        reason = f"{new:.4f} ties the champion's {old:.4f}: a tie keeps the champion"
    else:
        reason = (
            f"{new:.4f} vs the champion's {old:.4f}: a gain of {gain:+.4f} does not reach "
            f"the margin {margin:.4f}"
            if gain > 0
            else f"{new:.4f} is below the champion's {old:.4f} ({gain:+.4f})"
        )
    return PromotionDecision(
        promoted,
        reason,
        new_test_accuracy=new,
        champion_test_accuracy=old,
        champion_version=version,
        margin=margin,
        test_split_fingerprint=fingerprint,
    )


# ------------------------------------------------------------------ registry access
def registry_root(uri: str | Path) -> str:
    """The storage location of a registry URI: a local path, ``file://PATH`` or ``gs://``."""
    uri = str(uri).strip()
    if not uri:
        raise ConfigError("the registry URI is empty", "pass a folder, file://PATH or gs://B/P")
    if uri.startswith("file://"):
        parsed = urllib.parse.urlparse(uri)
        if parsed.netloc not in ("", "localhost"):
            raise ConfigError(
                f"file URI {uri!r} names a host", "write file:///absolute/path (three slashes)"
            )
        return urllib.parse.unquote(parsed.path)
    if storage.is_gcs(uri):
        storage.split_gcs(uri)  # a malformed bucket is a StorageError here
        return uri.rstrip("/")
    return uri


def _json_bytes(obj: Any) -> bytes:
    return (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode()


def _read_pointer(root: str) -> tuple[dict[str, Any] | None, int | str | None]:
    uri = storage.join(root, POINTER_FILE)
    data, token = storage.read_versioned(uri)
    if data is None:
        return None, None
    try:
        pointer = json.loads(data)
    except json.JSONDecodeError as err:
        raise ArtifactError(
            f"{uri} is not valid JSON ({err})",
            "restore it from history/ or versions/ of the registry",
        ) from err
    if not isinstance(pointer, dict) or not {
        "version",
        "path",
        "test_accuracy",
        "test_split_fingerprint",
    } <= set(pointer):
        raise ArtifactError(
            f"{uri} is not a champion pointer",
            "restore it from history/ or versions/ of the registry",
        )
    return pointer, token


def champion(registry_uri: str | Path) -> dict[str, Any] | None:
    """The registry's champion pointer (``champion.json``), or ``None`` when it has none."""
    return _read_pointer(registry_root(registry_uri))[0]


def new_version_id(
    run_info: Mapping[str, Any] | None = None, now: dt.datetime | None = None
) -> str:
    """``YYYYMMDDTHHMMSSffffffZ-<hash of run_info, 8 hex>-<4 random hex>``: unique, sortable."""
    now = (now or dt.datetime.now(dt.timezone.utc)).astimezone(dt.timezone.utc)
    digest = hashlib.sha256(json.dumps(run_info or {}, sort_keys=True, default=str).encode())
    return f"{now:%Y%m%dT%H%M%S%fZ}-{digest.hexdigest()[:8]}-{secrets.token_hex(2)}"


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _files(folder: Path, skip: tuple[str, ...] = ()) -> list[Path]:
    return sorted(
        p for p in folder.rglob("*") if p.is_file() and p.relative_to(folder).as_posix() not in skip
    )


def _upload_payload(
    version_uri: str, final_dir: Path, controller_dir: Path, metrics: dict[str, Any]
) -> list[dict[str, Any]]:
    """Copy the model and the controller checkpoint into the version, file by file (streamed);
    return the manifest entries.  The run's own gate records are not part of the model."""
    entries = []
    for prefix, folder, skip in (
        (MODEL_DIR, final_dir, (RECORD_FILE, REPORT_FILE)),
        (CONTROLLER_DIR, controller_dir, ()),
    ):
        for file in _files(folder, skip):
            rel = f"{prefix}/{file.relative_to(folder).as_posix()}"
            storage.upload_file(file, storage.join(version_uri, rel))
            entries.append(
                {"path": rel, "bytes": file.stat().st_size, "sha256": _sha256_file(file)}
            )
    data = _json_bytes(metrics)
    storage.write_bytes(storage.join(version_uri, METRICS_FILE), data)
    entries.append(
        {"path": METRICS_FILE, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    )
    return entries


def _seal(version_uri: str, record: dict[str, Any], entries: list[dict[str, Any]]) -> None:
    """Write the version's promotion.json, then its manifest (the version is complete)."""
    data = _json_bytes(record)
    storage.write_bytes(storage.join(version_uri, RECORD_FILE), data)
    manifest = {
        "format": FORMAT,
        "version": record["run_version"],
        "files": entries
        + [{"path": RECORD_FILE, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}],
    }
    storage.write_bytes(storage.join(version_uri, MANIFEST_FILE), _json_bytes(manifest))


def _now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


# ------------------------------------------------------------------ the gate
def promote(
    registry_uri: str | Path,
    final_dir: str | Path,
    controller_dir: str | Path,
    fingerprint: str,
    margin: float = 0.0,
    run_info: Mapping[str, Any] | None = None,
    *,
    record_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Compare the run's model with the registry's champion and publish it if it wins.

    ``final_dir``: the search's local ``final/`` folder (its ``metrics.json`` holds the test
    accuracy); ``controller_dir``: a local controller checkpoint (``Controller.save``);
    ``fingerprint``: :func:`test_split_fingerprint` of the run's test split; ``run_info``:
    JSON-able facts about the run, kept in the records (configuration hash, seed, warm
    start, ...).

    Writes ``promotion.json`` and ``promotion.md`` into ``record_dir`` (default:
    ``final_dir``) and returns the record (the :class:`PromotionDecision` plus the
    versions).  Raises :class:`RegistryError` on a changed test split and
    :class:`ConflictError` if the pointer kept changing under it for :data:`MAX_ATTEMPTS`.
    """
    root = registry_root(registry_uri)
    margin = check_margin(margin)
    final_dir, controller_dir = Path(final_dir), Path(controller_dir)
    try:
        metrics = json.loads((final_dir / METRICS_FILE).read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ArtifactError(
            f"{final_dir}/{METRICS_FILE} is missing or unreadable ({err})",
            "pass the final/ folder written by the evaluation",
        ) from err
    if not (controller_dir / CONTROLLER_STATE_FILE).is_file():
        raise ArtifactError(
            f"{controller_dir} holds no {CONTROLLER_STATE_FILE}",
            "pass a controller checkpoint written by Controller.save",
        )
    info = dict(run_info or {})
    target = Path(record_dir) if record_dir is not None else final_dir
    earlier = _repeated_promotion(target / RECORD_FILE, registry_uri, _read_pointer(root)[0])
    if earlier is not None:
        return earlier
    version_id = new_version_id(info)
    version_uri = storage.join(root, VERSIONS_DIR, version_id)
    entries: list[dict[str, Any]] | None = None
    previous: str | None = None
    for attempt in range(1, MAX_ATTEMPTS + 1):
        pointer, token = _read_pointer(root)
        if pointer is not None and pointer.get("version") == version_id:
            break  # our write landed after all (a retried request was answered 412)
        previous = pointer["version"] if pointer else None
        decision = decide_promotion(metrics, pointer, margin, fingerprint)
        record = {
            "format": FORMAT,
            **decision.to_json(),
            "registry": str(registry_uri),
            "run_version": version_id,
            "champion_after": version_id if decision.promoted else previous,
            "previous_champion": previous,
            "decided_at": _now_iso(),
            "attempts": attempt,
            "run": info,
        }
        if not decision.promoted:
            break
        if entries is None:  # the heavy upload happens once, whatever the retries
            entries = _upload_payload(
                version_uri,
                final_dir,
                controller_dir,
                {**metrics, "test_split_fingerprint": fingerprint},
            )
        _seal(version_uri, record, entries)
        new_pointer = {
            "format": FORMAT,
            "version": version_id,
            "path": f"{VERSIONS_DIR}/{version_id}",
            "test_accuracy": decision.new_test_accuracy,
            "test_split_fingerprint": fingerprint,
            "promoted_at": record["decided_at"],
            "previous_version": previous,
            "margin": margin,
        }
        try:
            storage.write_if_unchanged(
                storage.join(root, POINTER_FILE), _json_bytes(new_pointer), token
            )
            break
        except ConflictError:
            continue  # another run promoted first: compare with its model instead
    else:
        raise ConflictError(
            f"the champion of {registry_uri} changed {MAX_ATTEMPTS} times while this run "
            "tried to promote",
            "re-run the gate; if it keeps happening, look for another process that rewrites "
            f"{POINTER_FILE}",
        )
    if entries is not None and not decision.promoted:
        record["reason"] += " (a concurrent run was promoted first; this version is unused)"
        _seal(version_uri, record, entries)  # the orphan says why it is not champion
    storage.write_bytes(storage.join(root, HISTORY_DIR, f"{version_id}.json"), _json_bytes(record))
    storage.write_bytes(target / RECORD_FILE, _json_bytes(record))
    storage.write_bytes(target / REPORT_FILE, render_markdown(record).encode())
    return record


def _repeated_promotion(
    record_path: Path, registry_uri: str | Path, pointer: Mapping[str, Any] | None
) -> dict[str, Any] | None:
    """The earlier record when this very folder was already promoted and still is champion
    (a re-run of a finished search, a retried job): the gate then changes nothing."""
    if pointer is None or not record_path.is_file():
        return None
    try:
        earlier = json.loads(record_path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    if (
        isinstance(earlier, dict)
        and earlier.get("promoted") is True
        and earlier.get("registry") == str(registry_uri)
        and earlier.get("run_version") == pointer.get("version")
    ):
        return {**earlier, "repeated": True}
    return None


def describe(record: Mapping[str, Any]) -> str:
    """One or two lines for a console."""
    if record.get("repeated"):
        head = (
            f"promotion: already PROMOTED earlier as {record['run_version']}, still the "
            f"champion of {record['registry']}"
        )
    elif record["promoted"]:
        head = f"promotion: PROMOTED {record['run_version']} as champion of {record['registry']}"
    else:
        head = (
            f"promotion: KEPT champion {record['champion_version']} of {record['registry']} "
            f"(this run: {record['run_version']}, recorded in history/)"
        )
    return f"{head}\n  {record['reason']}"


def render_markdown(record: Mapping[str, Any]) -> str:
    """The gate's summary as Markdown (``promotion.md``, the pipeline's report)."""

    def acc(value: float | None) -> str:
        return "-" if value is None else f"{value:.4f}"

    lines = [
        f"# Promotion gate: {'promoted' if record['promoted'] else 'champion kept'}",
        "",
        "| | test accuracy | version |",
        "|---|---|---|",
        f"| this run | {acc(record['new_test_accuracy'])} | `{record['run_version']}` |",
        f"| champion before | {acc(record['champion_test_accuracy'])} | "
        f"`{record['champion_version'] or '-'}` |",
        "",
        f"- decision: **{record['decision']}**: {record['reason']}",
        f"- rule: promote when gain > 0 and gain >= margin (margin {record['margin']:.4f}); "
        "a tie keeps the champion",
        f"- champion now: `{record['champion_after']}`",
        f"- registry: `{record['registry']}`",
        f"- test split: sha256 `{record['test_split_fingerprint'][:16]}`",
    ]
    warm = (record.get("run") or {}).get("warm_start")
    if warm:
        lines.append(f"- warm start: controller of champion `{warm.get('version')}`")
    lines.append(f"- decided at {record['decided_at']} (attempt {record['attempts']})")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------ warm start
def check_controller_compatible(
    saved: Mapping[str, Any], settings: Any, *, source: str = "the checkpoint"
) -> None:
    """Raise :class:`RegistryError` unless ``saved`` (a checkpoint's settings) and
    ``settings`` (a :class:`~rachel.core.controller.ControllerSettings` or a mapping) agree on
    the settings that shape the policy: :data:`POLICY_SETTINGS`."""

    def value(obj: Any, key: str) -> Any:
        return obj.get(key) if isinstance(obj, Mapping) else getattr(obj, key, None)

    differ = [k for k in POLICY_SETTINGS if value(saved, k) != value(settings, k)]
    if differ:
        shown = ", ".join(
            f"{k}={value(saved, k)!r} there, {value(settings, k)!r} here" for k in differ
        )
        raise RegistryError(
            f"{source} does not fit this search: {shown}",
            "run with the champion's controller settings, drop --warm-start, or use a new "
            "registry URI",
        )


def champion_controller(
    registry_uri: str | Path, target_local_dir: str | Path, settings: Any = None
) -> tuple[Path, dict[str, Any]]:
    """Download the champion's controller checkpoint into ``target_local_dir`` (built
    atomically, checked against the version's manifest); return it and the pointer.

    ``settings`` (the new run's controller settings) is checked with
    :func:`check_controller_compatible` before anything is downloaded.
    """
    root = registry_root(registry_uri)
    pointer, _ = _read_pointer(root)
    if pointer is None:
        raise RegistryError(
            f"registry {registry_uri} has no champion yet: no controller to warm-start from",
            "run once without --warm-start; that run's model becomes the first champion",
        )
    version_uri = storage.join(root, pointer["path"])
    manifest = storage.read_json(storage.join(version_uri, MANIFEST_FILE))
    prefix = f"{CONTROLLER_DIR}/"
    files = [e for e in manifest.get("files", []) if e["path"].startswith(prefix)]
    if not any(e["path"] == prefix + CONTROLLER_STATE_FILE for e in files):
        raise ArtifactError(
            f"champion {pointer['version']} has no controller checkpoint",
            "promote a run that saved its controller, or drop --warm-start",
        )
    state = storage.read_json(storage.join(version_uri, prefix + CONTROLLER_STATE_FILE))
    if settings is not None:
        check_controller_compatible(
            state.get("settings", {}),
            settings,
            source=f"the controller of champion {pointer['version']}",
        )
    target = Path(target_local_dir)
    with storage.atomic_dir(target) as tmp:
        for entry in files:
            local = tmp / entry["path"][len(prefix) :]
            storage.download_file(storage.join(version_uri, entry["path"]), local)
            if local.stat().st_size != entry["bytes"] or _sha256_file(local) != entry["sha256"]:
                raise ArtifactError(
                    f"{version_uri}/{entry['path']} does not match the version's manifest",
                    "the registry was modified by hand; restore the version or promote anew",
                )
    return target, pointer


def warm_start_controller(
    registry_uri: str | Path,
    target_local_dir: str | Path,
    settings: Any = None,
    *,
    missing_ok: bool = False,
) -> Path | None:
    """The champion's controller checkpoint, downloaded into ``target_local_dir`` (a folder
    :meth:`Controller.load <rachel.core.controller.Controller.load>` reads).

    No champion: :class:`RegistryError`, or ``None`` with ``missing_ok``.  A checkpoint whose
    policy-shaping settings differ from ``settings``: :class:`RegistryError`.
    """
    if missing_ok and champion(registry_uri) is None:
        return None
    return champion_controller(registry_uri, target_local_dir, settings)[0]


# ------------------------------------------------------------------ a search's output
def _latest_controller(names: Iterable[str]) -> str | None:
    """Of the relative file names of a search output, the newest controller checkpoint's
    folder (``iterations/itNNN/controller`` first, else ``.../controller_gen``)."""
    found: dict[str, list[tuple[int, str]]] = {"controller": [], "controller_gen": []}
    for name in names:
        parts = name.split("/")
        if (
            len(parts) == 4
            and parts[0] == "iterations"
            and parts[1].startswith("it")
            and parts[1][2:].isdigit()
            and parts[2] in found
            and parts[3] == CONTROLLER_STATE_FILE
        ):
            found[parts[2]].append((int(parts[1][2:]), "/".join(parts[:3])))
    for kind in ("controller", "controller_gen"):
        if found[kind]:
            return max(found[kind])[1]
    return None


def latest_controller_checkpoint(output: str | Path) -> Path:
    """The newest controller state in a local ``rachel search`` output: the highest
    ``iterations/itNNN/controller/`` (after an update); when no iteration has one (a
    single-iteration run skips the last update, which nothing would use), the highest
    ``iterations/itNNN/controller_gen/`` (the state that sampled that iteration)."""
    output = Path(output)
    names = (
        p.relative_to(output).as_posix()
        for p in output.glob(f"iterations/*/*/{CONTROLLER_STATE_FILE}")
    )
    rel = _latest_controller(names)
    if rel is None:
        raise ArtifactError(
            f"no controller checkpoint under {output / 'iterations'}",
            "run the gate on the output of a finished rachel search",
        )
    return output / rel


def promote_search_output(
    output: str | Path,
    registry_uri: str | Path,
    margin: float = 0.0,
    run_info: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """:func:`promote` on a finished ``rachel search`` output (a folder or ``gs://`` prefix):
    its ``final/``, its :func:`latest_controller_checkpoint` and the fingerprint of its
    ``splits.npz``.  The records land in ``final/`` (for ``gs://``, uploaded after a local
    copy of the three inputs has been gated)."""
    uri = str(output)
    if not storage.is_gcs(uri):
        output = Path(uri)
        controller = latest_controller_checkpoint(output)
        info = {
            **(run_info or {}),
            "controller_checkpoint": controller.relative_to(output).as_posix(),
        }
        return promote(
            registry_uri,
            output / "final",
            controller,
            splits_fingerprint(output / "splits.npz"),
            margin,
            info,
        )
    names = [f"iterations/{n}" for n in storage.list_files(storage.join(uri, "iterations"))]
    rel = _latest_controller(names)
    if rel is None:
        raise ArtifactError(
            f"no controller checkpoint under {uri}/iterations",
            "run the gate on the output of a finished rachel search",
        )
    with tempfile.TemporaryDirectory(prefix="rachel-gate-") as tmp:
        local = Path(tmp)
        storage.download_dir(storage.join(uri, "final"), local / "final")
        storage.download_dir(storage.join(uri, rel), local / rel)
        storage.download_file(storage.join(uri, "splits.npz"), local / "splits.npz")
        record = promote_search_output(local, registry_uri, margin, run_info)
        for name in (RECORD_FILE, REPORT_FILE):
            storage.upload_file(local / "final" / name, storage.join(uri, "final", name))
    return record
