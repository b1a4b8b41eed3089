"""rachel.core.registry: the test-split fingerprint, the promotion rule, publishing (local
folder, file:// and the GCS emulator), the pointer written last, concurrent promotions,
warm start, and the CLI's gate (exit code 6) without a real search.

The registry only copies files: the "models" here are small dummy files, and the
controllers are real ``kind="random"`` controllers (saved and loaded without TensorFlow).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import pytest

from rachel.core import registry, storage
from rachel.core.controller import Controller, ControllerSettings
from rachel.core.errors import (
    ArtifactError,
    ConfigError,
    ConflictError,
    NotPromotedError,
    RegistryError,
)
from rachel.core.registry import PromotionDecision, decide_promotion

# not imported by name: pytest would collect a function called test_* as a test
fingerprint_of = registry.test_split_fingerprint

REPO = Path(__file__).resolve().parents[2]
FP = "f" * 64


# ----------------------------------------------------------------------- fixtures
def _splits(seed: int = 0, n: int = 8) -> Any:
    from rachel.core.data.splits import DatasetSplits

    rng = np.random.default_rng(seed)

    def part() -> tuple[np.ndarray, np.ndarray]:
        x = rng.integers(0, 256, size=(n, 4, 4, 1), dtype=np.uint8)
        return x, np.arange(n, dtype=np.int64) % 2

    (xtr, ytr), (xv, yv), (xte, yte) = part(), part(), part()
    return DatasetSplits(
        xtr,
        ytr,
        xv,
        yv,
        xte,
        yte,
        name="tiny",
        num_classes=2,
        class_names=("a", "b"),
        input_shape=(4, 4, 1),
        augmentation="none",
        seed=seed,
        source="test",
    )


def _controller(folder: Path, **settings: Any) -> Path:
    """A real (random-search) controller, moved on by one proposal, saved to ``folder``."""
    options = {"kind": "random", "max_new_layers": 2, "max_width": 32, "seed": 3, **settings}
    ctrl = Controller(ControllerSettings(**options))
    ctrl.propose(["it000-c00", "it000-c01"], 1.5)
    ctrl.save(folder)
    return folder


def _final(folder: Path, accuracy: float) -> Path:
    """A fake final/ folder: metrics, a dummy model file, a SavedModel-like subfolder."""
    (folder / "saved_model" / "variables").mkdir(parents=True)
    (folder / "metrics.json").write_text(json.dumps({"test_accuracy": accuracy, "params": 7}))
    (folder / "model.keras").write_bytes(os.urandom(3000))
    (folder / "saved_model" / "saved_model.pb").write_bytes(b"pb")
    (folder / "saved_model" / "variables" / "variables.index").write_bytes(b"idx")
    (folder / "report.md").write_text(f"# report {accuracy}\n")
    return folder


@pytest.fixture
def run(tmp_path: Path):  # noqa: ANN201 - a factory
    """``run(accuracy)`` -> (final_dir, controller_dir) of a fake finished search."""
    count = iter(range(100))

    def make(accuracy: float, **settings: Any) -> tuple[Path, Path]:
        root = tmp_path / f"run{next(count)}"
        return _final(root / "final", accuracy), _controller(root / "controller", **settings)

    return make


@pytest.fixture(params=["local", "file", "gcs"])
def registry_uri(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "local":
        return str(tmp_path / "registry")
    if request.param == "file":
        return (tmp_path / "reg istry").as_uri()  # file:///..., with a quoted space
    return request.getfixturevalue("gcs_bucket") + "/team/registry"


def _root(uri: str) -> str:
    return registry.registry_root(uri)


def _versions(uri: str) -> set[str]:
    names = storage.list_files(storage.join(_root(uri), "versions"))
    return {n.split("/")[0] for n in names}


def _sealed(uri: str) -> set[str]:
    names = storage.list_files(storage.join(_root(uri), "versions"))
    return {n.split("/")[0] for n in names if n.endswith("/MANIFEST.json")}


def _pointer_bytes(uri: str) -> bytes:
    return storage.read_bytes(storage.join(_root(uri), "champion.json"))


# -------------------------------------------------------------------- fingerprint
def test_fingerprint_is_stable_across_copies_layouts_and_byte_orders() -> None:
    s = _splits()
    fp = fingerprint_of(s.y_test, s.x_test)
    assert len(fp) == 64 and int(fp, 16) >= 0
    assert fingerprint_of(s.y_test.copy(), s.x_test.copy()) == fp
    assert fingerprint_of(_splits().y_test, _splits().x_test) == fp  # same seed
    fortran = np.asfortranarray(s.x_test)
    assert not fortran.flags.c_contiguous or s.x_test.ndim < 2
    assert fingerprint_of(s.y_test, fortran) == fp  # values, not memory layout
    big_endian = s.y_test.astype(">i8")
    assert fingerprint_of(big_endian, s.x_test) == fp  # values, not byte order


@pytest.mark.parametrize("change", ["pixel", "label", "order", "dtype", "shape", "drop"])
def test_fingerprint_changes_with_the_test_split(change: str) -> None:
    s = _splits()
    x, y = s.x_test.copy(), s.y_test.copy()
    if change == "pixel":
        x[3, 1, 2, 0] ^= 1
    elif change == "label":
        y[0] = 1 - y[0]
    elif change == "order":
        x, y = x[::-1], y[::-1]
    elif change == "dtype":
        y = y.astype(np.int32)
    elif change == "shape":
        x = x.reshape(len(x), 2, 8, 1)
    else:
        x, y = x[:-1], y[:-1]
    assert fingerprint_of(y, x) != fingerprint_of(s.y_test, s.x_test)


def test_fingerprint_of_a_splits_artifact_is_its_test_split(tmp_path: Path) -> None:
    s = _splits()
    s.save(tmp_path / "splits.npz")
    assert registry.splits_fingerprint(tmp_path / "splits.npz") == fingerprint_of(
        s.y_test, s.x_test
    )
    assert registry.splits_fingerprint(tmp_path / "splits.npz") != fingerprint_of(s.y_val, s.x_val)
    with pytest.raises(ArtifactError):
        fingerprint_of(np.array(["a", "b"], dtype=object), s.x_test)


# ---------------------------------------------------------------------- decision
def _champion(accuracy: float, fingerprint: str = FP) -> dict[str, Any]:
    return {
        "version": "v-old",
        "path": "versions/v-old",
        "test_accuracy": accuracy,
        "test_split_fingerprint": fingerprint,
    }


@pytest.mark.parametrize(
    ("new", "old", "margin", "promoted", "reason"),
    [
        (0.80, None, 0.0, True, "no champion yet"),
        (0.10, None, 0.5, True, "no champion yet"),  # the first model always wins
        (0.81, 0.80, 0.0, True, "beats"),
        (0.79, 0.80, 0.0, False, "below the champion"),
        (0.80, 0.80, 0.0, False, "a tie keeps the champion"),
        (0.80, 0.80, 0.01, False, "a tie keeps the champion"),
        (0.805, 0.80, 0.01, False, "does not reach the margin"),
        (0.81, 0.80, 0.01, True, "beats"),  # a gain of exactly the margin is enough
        (0.57, 0.56, 0.01, True, "beats"),  # ... also where 0.57 - 0.56 < 0.01 in floats
        (0.90, 0.80, 0.05, True, "beats"),
    ],
)
def test_decide_promotion(
    new: float, old: float | None, margin: float, promoted: bool, reason: str
) -> None:
    champion = None if old is None else _champion(old)
    decision = decide_promotion({"test_accuracy": new}, champion, margin, FP)
    assert decision.promoted is promoted
    assert reason in decision.reason
    assert decision.outcome == ("promoted" if promoted else "kept")
    assert decision.champion_test_accuracy == old
    assert decision.champion_version == (None if old is None else "v-old")
    assert decision.margin == margin and decision.test_split_fingerprint == FP
    raw = json.loads(json.dumps(decision.to_json()))
    assert raw["decision"] == decision.outcome
    assert PromotionDecision.from_json(raw) == decision


def test_a_changed_test_split_is_a_clear_error() -> None:
    with pytest.raises(RegistryError, match="the test split changed") as err:
        decide_promotion({"test_accuracy": 0.99}, _champion(0.5, "a" * 64), 0.0, "b" * 64)
    assert "cannot be compared" in err.value.problem
    assert "same dataset, seed" in err.value.hint and "new registry URI" in err.value.hint
    assert err.value.exit_code == 2


@pytest.mark.parametrize("margin", [-0.01, 1.0, float("nan"), float("inf")])
def test_bad_margins_are_config_errors(margin: float) -> None:
    with pytest.raises(ConfigError, match="margin"):
        decide_promotion({"test_accuracy": 0.5}, None, margin, FP)


@pytest.mark.parametrize(
    "metrics",
    [
        {},
        {"test_accuracy": None},
        {"test_accuracy": 1.5},
        {"test_accuracy": True},
        {"test_accuracy": "0.9"},
    ],
)
def test_metrics_without_a_valid_accuracy_are_refused(metrics: dict) -> None:
    with pytest.raises(ArtifactError, match="test_accuracy"):
        decide_promotion(metrics, None, 0.0, FP)


# --------------------------------------------------------------- publish / promote
def test_promote_publishes_then_keeps_the_better_model(registry_uri: str, run: Any) -> None:
    final, ctrl = run(0.80)
    first = registry.promote(registry_uri, final, ctrl, FP, 0.0, {"seed": 1})
    assert first["promoted"] and first["previous_champion"] is None
    v1 = first["run_version"]
    pointer = registry.champion(registry_uri)
    assert pointer is not None
    assert (pointer["version"], pointer["path"], pointer["test_accuracy"]) == (
        v1,
        f"versions/{v1}",
        0.80,
    )
    assert pointer["test_split_fingerprint"] == FP
    version = storage.join(_root(registry_uri), "versions", v1)
    files = set(storage.list_files(version))
    assert {
        "model/model.keras",
        "model/metrics.json",
        "model/report.md",
        "model/saved_model/saved_model.pb",
        "model/saved_model/variables/variables.index",
        "controller/controller.json",
        "metrics.json",
        "promotion.json",
        "MANIFEST.json",
    } == files
    assert (
        storage.read_bytes(storage.join(version, "model/model.keras"))
        == (final / "model.keras").read_bytes()
    )
    assert storage.read_json(storage.join(version, "metrics.json"))["test_split_fingerprint"] == FP
    manifest = storage.read_json(storage.join(version, "MANIFEST.json"))
    assert {e["path"] for e in manifest["files"]} == files - {"MANIFEST.json"}
    # the run's own records, in its final folder
    local = json.loads((final / "promotion.json").read_text())
    assert local == first and local["run"]["seed"] == 1
    assert "promoted" in (final / "promotion.md").read_text()

    better_final, better_ctrl = run(0.85)
    second = registry.promote(registry_uri, better_final, better_ctrl, FP)
    assert second["promoted"] and second["previous_champion"] == v1
    assert second["champion_version"] == v1 and second["champion_test_accuracy"] == 0.80
    v2 = second["run_version"]
    assert v2 > v1  # sortable: later versions sort later
    assert registry.champion(registry_uri)["version"] == v2
    assert registry.champion(registry_uri)["previous_version"] == v1

    before = _pointer_bytes(registry_uri)
    worse_final, worse_ctrl = run(0.84)
    third = registry.promote(registry_uri, worse_final, worse_ctrl, FP)
    assert not third["promoted"] and third["decision"] == "kept"
    assert third["champion_after"] == v2 and third["champion_version"] == v2
    assert _pointer_bytes(registry_uri) == before  # the champion is untouched
    assert _versions(registry_uri) == {v1, v2}  # nothing published for a kept champion
    history = storage.list_files(storage.join(_root(registry_uri), "history"))
    assert history == sorted(f"{r['run_version']}.json" for r in (first, second, third))
    kept = storage.read_json(storage.join(_root(registry_uri), "history", history[-1]))
    assert kept == third
    md = (worse_final / "promotion.md").read_text()
    assert "champion kept" in md and "0.8400" in md and "0.8500" in md and v2 in md


def test_a_tie_never_replaces_the_champion_and_a_margin_is_applied(
    tmp_path: Path, run: Any
) -> None:
    uri = str(tmp_path / "reg")
    registry.promote(uri, *run(0.80), FP)
    tie = registry.promote(uri, *run(0.80), FP)
    assert not tie["promoted"] and "tie" in tie["reason"]
    short = registry.promote(uri, *run(0.805), FP, margin=0.01)
    assert not short["promoted"] and "margin" in short["reason"]
    assert registry.promote(uri, *run(0.81), FP, margin=0.01)["promoted"]


def test_a_changed_split_stops_the_gate_and_changes_nothing(tmp_path: Path, run: Any) -> None:
    uri = str(tmp_path / "reg")
    registry.promote(uri, *run(0.80), FP)
    before = _pointer_bytes(uri)
    final, ctrl = run(0.95)
    with pytest.raises(RegistryError, match="test split changed"):
        registry.promote(uri, final, ctrl, "0" * 64)
    assert _pointer_bytes(uri) == before and len(_versions(uri)) == 1
    assert not (final / "promotion.json").exists()


def test_promote_checks_its_inputs_before_touching_the_registry(tmp_path: Path, run: Any) -> None:
    final, ctrl = run(0.8)
    with pytest.raises(ArtifactError, match="controller.json"):
        registry.promote(tmp_path / "reg", final, tmp_path, FP)
    (final / "metrics.json").unlink()
    with pytest.raises(ArtifactError, match="metrics.json"):
        registry.promote(tmp_path / "reg", final, ctrl, FP)
    assert not (tmp_path / "reg").exists()
    with pytest.raises(ConfigError, match="names a host"):
        registry.registry_root("file://host/path")
    with pytest.raises(ConfigError, match="empty"):
        registry.registry_root(" ")


def test_a_rerun_of_a_promoted_folder_changes_nothing(tmp_path: Path, run: Any) -> None:
    uri = str(tmp_path / "reg")
    final, ctrl = run(0.8)
    first = registry.promote(uri, final, ctrl, FP)
    again = registry.promote(uri, final, ctrl, FP)  # e.g. a retried CI job
    assert again["repeated"] is True and again["run_version"] == first["run_version"]
    assert len(_versions(uri)) == 1
    assert len(storage.list_files(tmp_path / "reg" / "history")) == 1
    assert "already PROMOTED" in registry.describe(again)


def test_the_runs_own_records_are_not_part_of_the_published_model(tmp_path: Path, run: Any) -> None:
    final, ctrl = run(0.8)
    registry.promote(tmp_path / "a", *run(0.9), FP)
    assert not registry.promote(tmp_path / "a", final, ctrl, FP)["promoted"]
    assert (final / "promotion.json").is_file()  # the kept record of registry a ...
    version = registry.promote(tmp_path / "b", final, ctrl, FP)["run_version"]
    model = tmp_path / "b" / "versions" / version / "model"
    assert (model / "model.keras").is_file()
    assert not (model / "promotion.json").exists() and not (model / "promotion.md").exists()


# ----------------------------------------------------------------- pointer last
def test_a_failed_upload_leaves_the_old_champion(
    registry_uri: str, run: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    v1 = registry.promote(registry_uri, *run(0.80), FP)["run_version"]
    before = _pointer_bytes(registry_uri)
    real = storage.upload_file
    calls = []

    def flaky(local: Any, uri: str) -> None:
        calls.append(uri)
        if len(calls) == 3:
            raise OSError("disk full (injected)")
        real(local, uri)

    monkeypatch.setattr(storage, "upload_file", flaky)
    with pytest.raises(OSError, match="injected"):
        registry.promote(registry_uri, *run(0.99), FP)
    assert len(calls) == 3
    assert _pointer_bytes(registry_uri) == before
    assert registry.champion(registry_uri)["version"] == v1
    half = _versions(registry_uri) - {v1}
    assert len(half) == 1  # the half-uploaded version is there ...
    assert _sealed(registry_uri) == {v1}  # ... but never sealed and never pointed at
    monkeypatch.setattr(storage, "upload_file", real)
    target = registry.warm_start_controller(registry_uri, tmp_path / "warm")
    assert target is not None and Controller.load(target).settings.max_width == 32


def test_the_pointer_is_the_last_registry_write(
    registry_uri: str, run: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    order: list[str] = []
    for name in ("upload_file", "write_bytes", "write_if_unchanged"):
        real = getattr(storage, name)

        def spy(*args: Any, _real: Any = real, **kwargs: Any) -> Any:
            order.append(str(args[1] if _real.__name__ == "upload_file" else args[0]))
            return _real(*args, **kwargs)

        monkeypatch.setattr(storage, name, spy)
    record = registry.promote(registry_uri, *run(0.7), FP)
    root = _root(registry_uri)
    in_registry = [u for u in order if u.startswith(root)]
    pointer = in_registry.index(storage.join(root, "champion.json"))
    version = storage.join(root, "versions", record["run_version"])
    assert all(u.startswith(version) for u in in_registry[:pointer])
    assert in_registry[pointer - 1] == storage.join(version, "MANIFEST.json")
    assert in_registry[pointer + 1 :] == [
        storage.join(root, "history", f"{record['run_version']}.json")
    ]


# ----------------------------------------------------------------- concurrency
def test_storage_conditional_write_refuses_a_stale_token(tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    assert storage.read_versioned(path) == (None, None)
    storage.write_if_unchanged(path, b"one", None)
    data, token = storage.read_versioned(path)
    assert data == b"one"
    with pytest.raises(ConflictError):
        storage.write_if_unchanged(path, b"two", None)  # it exists now
    storage.write_if_unchanged(path, b"two", token)
    with pytest.raises(ConflictError):
        storage.write_if_unchanged(path, b"three", token)  # stale
    assert path.read_bytes() == b"two"


@pytest.mark.parametrize(("theirs", "ours_promoted"), [(0.90, False), (0.82, True)])
def test_a_concurrent_promotion_is_compared_before_ours_wins(
    tmp_path: Path,
    run: Any,
    monkeypatch: pytest.MonkeyPatch,
    theirs: float,
    ours_promoted: bool,
) -> None:
    uri = str(tmp_path / "reg")
    registry.promote(uri, *run(0.80), FP)
    their_run = run(theirs)
    real = registry._upload_payload
    other: dict[str, Any] = {}
    raced = []

    def racing(*args: Any) -> Any:
        if not raced:  # another run publishes while ours uploads
            raced.append(True)
            other.update(registry.promote(uri, *their_run, FP))
        return real(*args)

    monkeypatch.setattr(registry, "_upload_payload", racing)
    ours = registry.promote(uri, *run(0.85), FP)
    assert other["promoted"]
    assert ours["attempts"] == 2  # the pointer write saw the other run's pointer
    assert ours["promoted"] is ours_promoted
    assert ours["champion_version"] == other["run_version"]  # compared with the winner
    champion = registry.champion(uri)
    expected = ours["run_version"] if ours_promoted else other["run_version"]
    assert champion["version"] == expected
    if not ours_promoted:
        assert "concurrent run" in ours["reason"]
        orphan = storage.read_json(
            tmp_path / "reg" / "versions" / ours["run_version"] / "promotion.json"
        )
        assert orphan["promoted"] is False  # the unused version says why
    else:
        assert champion["previous_version"] == other["run_version"]


def test_a_conflict_reported_for_a_write_that_landed_is_a_promotion(
    tmp_path: Path, run: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = storage.write_if_unchanged
    answers: list[str] = []

    def landed_then_412(uri: str, data: bytes, token: Any) -> None:
        real(uri, data, token)
        if not answers:  # e.g. a timed-out request whose retry saw its own new generation
            answers.append("412")
            raise ConflictError("changed (injected)")

    monkeypatch.setattr(storage, "write_if_unchanged", landed_then_412)
    record = registry.promote(tmp_path / "reg", *run(0.8), FP)
    assert answers and record["promoted"] and record["attempts"] == 1
    assert "concurrent" not in record["reason"]
    assert registry.champion(tmp_path / "reg")["version"] == record["run_version"]


def test_gcs_pointer_uses_generation_preconditions(gcs_bucket: str, run: Any) -> None:
    """The emulator does not enforce preconditions: check what is sent, and that a 412
    from the server makes the gate decide again."""
    from google.api_core import exceptions as gexc
    from google.cloud.storage import Blob

    uri = f"{gcs_bucket}/reg"
    real = Blob.upload_from_string
    sent: list[Any] = []
    fail_next = [False]

    def upload(blob: Any, data: Any, *args: Any, **kwargs: Any) -> Any:
        if blob.name.endswith("champion.json"):
            sent.append(kwargs.get("if_generation_match"))
            if fail_next[0]:
                fail_next[0] = False
                raise gexc.PreconditionFailed("generation changed (injected)")
        return real(blob, data, *args, **kwargs)

    with mock.patch.object(Blob, "upload_from_string", autospec=True, side_effect=upload):
        registry.promote(uri, *run(0.8), FP)
        assert sent == [0]  # create only: no champion.json may exist yet
        _, generation = storage.read_versioned(f"{uri}/champion.json")
        assert isinstance(generation, int) and generation > 0
        fail_next[0] = True
        record = registry.promote(uri, *run(0.9), FP)
    assert sent[1:] == [generation, generation]  # refused once, then read again and retried
    assert record["promoted"] and record["attempts"] == 2
    assert registry.champion(uri)["version"] == record["run_version"]


def test_a_pointer_that_keeps_changing_is_a_conflict(
    tmp_path: Path, run: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def always(*args: Any) -> None:
        raise ConflictError("changed (injected)")

    monkeypatch.setattr(storage, "write_if_unchanged", always)
    with pytest.raises(ConflictError, match="changed 5 times"):
        registry.promote(tmp_path / "reg", *run(0.8), FP)
    assert registry.champion(tmp_path / "reg") is None


# ------------------------------------------------------------------- warm start
def test_warm_start_returns_a_loadable_controller(
    registry_uri: str, run: Any, tmp_path: Path
) -> None:
    final, ctrl = run(0.8)
    registry.promote(registry_uri, final, ctrl, FP)
    original = Controller.load(ctrl)
    settings = ControllerSettings(kind="random", max_new_layers=2, max_width=32, seed=99)
    target = registry.warm_start_controller(registry_uri, tmp_path / "warm", settings)
    assert target == tmp_path / "warm"
    loaded = Controller.load(target)
    assert loaded.settings == original.settings and loaded.pending == original.pending
    ids = ["it000-c00", "it000-c01"]
    assert loaded.propose(ids, 1.5) == original.propose(ids, 1.5)  # the same RNG state


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"max_width": 64}, "max_width"),
        ({"max_new_layers": 3}, "max_new_layers"),
        ({"kind": "rl"}, "kind"),
    ],
)
def test_warm_start_refuses_an_incompatible_checkpoint(
    tmp_path: Path, run: Any, settings: dict, named: str
) -> None:
    uri = str(tmp_path / "reg")
    registry.promote(uri, *run(0.8), FP)
    new = {"kind": "random", "max_new_layers": 2, "max_width": 32, **settings}
    with pytest.raises(RegistryError, match=f"{named}=") as err:
        registry.warm_start_controller(uri, tmp_path / "warm", new)
    assert "drop --warm-start" in err.value.hint
    assert not (tmp_path / "warm").exists()  # checked before anything is downloaded
    fine = {"kind": "random", "max_new_layers": 2, "max_width": 32, "seed": 5}
    assert registry.warm_start_controller(uri, tmp_path / "warm", fine) == tmp_path / "warm"


def test_warm_start_without_a_champion(tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match="no champion yet") as err:
        registry.warm_start_controller(tmp_path / "reg", tmp_path / "warm")
    assert "without --warm-start" in err.value.hint
    assert registry.warm_start_controller(tmp_path / "reg", tmp_path / "w", missing_ok=True) is None


def test_warm_start_checks_the_manifest(tmp_path: Path, run: Any) -> None:
    uri = tmp_path / "reg"
    version = registry.promote(uri, *run(0.8), FP)["run_version"]
    state = uri / "versions" / version / "controller" / "controller.json"
    state.write_text(state.read_text().replace('"updates": 0', '"updates": 1'))
    with pytest.raises(ArtifactError, match="does not match the version's manifest"):
        registry.warm_start_controller(uri, tmp_path / "warm")
    assert not (tmp_path / "warm").exists()


# -------------------------------------------------------- a search's output + the CLI
def _fake_output(out: Path, accuracy: float, *, iterations: int = 2, updated: bool = True) -> Path:
    """What run_search leaves (final/, splits.npz, controller checkpoints), without a search."""
    _final(out / "final", accuracy)
    _splits().save(out / "splits.npz")
    for it in range(iterations):
        _controller(out / "iterations" / f"it{it:03d}" / "controller_gen", seed=it)
        if updated and it + 1 < iterations:
            _controller(out / "iterations" / f"it{it:03d}" / "controller", seed=100 + it)
    return out


def test_latest_controller_checkpoint(tmp_path: Path) -> None:
    out = _fake_output(tmp_path / "a", 0.5, iterations=3)
    assert registry.latest_controller_checkpoint(out) == out / "iterations/it001/controller"
    single = _fake_output(tmp_path / "b", 0.5, iterations=1)
    assert (
        registry.latest_controller_checkpoint(single) == single / "iterations/it000/controller_gen"
    )
    many = tmp_path / "c"
    for it in (999, 1000):  # numeric, not string, order: it1000 is the later one
        _controller(many / "iterations" / f"it{it:03d}" / "controller_gen")
    assert registry.latest_controller_checkpoint(many).parent.name == "it1000"
    with pytest.raises(ArtifactError, match="no controller checkpoint"):
        registry.latest_controller_checkpoint(tmp_path / "empty")


def test_promote_search_output_on_a_gcs_output(gcs_bucket: str, tmp_path: Path) -> None:
    local = _fake_output(tmp_path / "out", 0.7)
    out = f"{gcs_bucket}/runs/weekly"
    storage.upload_dir(local, out)
    record = registry.promote_search_output(out, f"{gcs_bucket}/reg", 0.0, {"seed": 0})
    assert record["promoted"]
    assert record["run"]["controller_checkpoint"] == "iterations/it000/controller"
    assert storage.read_json(f"{out}/final/promotion.json") == record
    assert "promoted" in storage.read_bytes(f"{out}/final/promotion.md").decode()


def test_cli_gate_exit_code_6_when_the_champion_is_kept(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    from rachel.cli.search_command import promotion_gate

    reg = str(tmp_path / "reg")
    first = promotion_gate(_fake_output(tmp_path / "w1", 0.8), reg, fail_if_not_promoted=True)
    assert first["promoted"]
    assert "PROMOTED" in capsys.readouterr().out
    worse = _fake_output(tmp_path / "w2", 0.7)
    with pytest.raises(NotPromotedError, match="not promoted") as err:
        promotion_gate(worse, reg, fail_if_not_promoted=True)
    assert err.value.exit_code == 6
    printed = capsys.readouterr().out
    assert "KEPT champion" in printed and "0.7000 is below" in printed
    assert json.loads((worse / "final" / "promotion.json").read_text())["decision"] == "kept"
    kept = promotion_gate(_fake_output(tmp_path / "w3", 0.7), reg)  # default: no failure
    assert kept["promoted"] is False


def _fake_run_search(accuracy: float, seen: dict[str, Any]) -> Any:
    def fake(
        config: Any,
        output: Any,
        *,
        on_event: Any = None,
        plan: Any = None,
        initial_controller: Any = None,
        restart: bool = False,
        started_at: Any = None,
    ) -> dict[str, Any]:
        if initial_controller is not None:
            seen["warm"] = Controller.load(initial_controller).settings
        _fake_output(Path(output), accuracy)
        return {"test_accuracy": accuracy}

    return fake


def _main(argv: list[str], accuracy: float, seen: dict[str, Any]) -> tuple[int, Any]:
    from rachel.cli.main import main

    with mock.patch(
        "rachel.core.search.run_search", autospec=True, side_effect=_fake_run_search(accuracy, seen)
    ) as fake:
        return main(argv), fake


def test_rachel_search_gate_and_warm_start_through_main(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    reg = str(tmp_path / "reg")
    common = ["search", "--controller", "random", "--quiet", "--registry", reg]
    seen: dict[str, Any] = {}
    code, fake = _main([*common, "--output", str(tmp_path / "w1")], 0.8, seen)
    assert code == 0 and fake.call_args.kwargs["initial_controller"] is None
    assert "PROMOTED" in capsys.readouterr().out
    code, fake = _main(
        [*common, "--output", str(tmp_path / "w2"), "--warm-start", "--fail-if-not-promoted"],
        0.75,
        seen,
    )
    assert code == 6
    captured = capsys.readouterr()
    assert "warm start: controller of champion" in captured.out
    assert "error: the new model was not promoted" in captured.err
    assert seen["warm"].kind == "random"  # the champion's checkpoint reached the search
    record = json.loads((tmp_path / "w2" / "final" / "promotion.json").read_text())
    champion = registry.champion(reg)
    assert record["run"]["warm_start"]["version"] == champion["version"]
    assert record["run"]["runner"] == "rachel search"
    code, _ = _main(
        [*common, "--output", str(tmp_path / "w3"), "--promotion-margin", "0.05"], 0.82, seen
    )
    assert code == 0 and registry.champion(reg) == champion  # 0.02 < margin: kept, exit 0


def test_warm_start_on_an_empty_registry_starts_from_scratch(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """The first run of a weekly schedule: no champion to start from is not an error."""
    reg = str(tmp_path / "reg")
    code, fake = _main(
        [
            "search",
            "--controller",
            "random",
            "--quiet",
            "--registry",
            reg,
            "--warm-start",
            "--output",
            str(tmp_path / "w1"),
        ],
        0.8,
        {},
    )
    assert code == 0 and fake.call_args.kwargs["initial_controller"] is None
    assert "no champion yet; the controller starts from scratch" in capsys.readouterr().out
    record = json.loads((tmp_path / "w1" / "final" / "promotion.json").read_text())
    assert record["promoted"] and record["run"]["warm_start"] == {"registry": reg, "version": None}


@pytest.mark.parametrize(
    "argv", [["--warm-start"], ["--fail-if-not-promoted"], ["--promotion-margin", "0.1"]]
)
def test_registry_options_need_a_registry(
    tmp_path: Path, argv: list[str], capsys: pytest.CaptureFixture
) -> None:
    code, fake = _main(["search", "--output", str(tmp_path / "o"), *argv], 0.8, {})
    assert code == 2 and not fake.called
    assert "needs --registry" in capsys.readouterr().err


def test_warm_start_errors_stop_before_the_search(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    reg = str(tmp_path / "reg")
    base = ["search", "--output", str(tmp_path / "o"), "--registry", reg, "--warm-start"]
    out = _fake_output(tmp_path / "w", 0.8)
    registry.promote_search_output(out, reg)
    code, fake = _main([*base, "--controller", "random", "--max-width", "64"], 0.8, {})
    assert code == 2 and not fake.called and "max_width=" in capsys.readouterr().err


def test_search_help_keeps_heavy_imports_out() -> None:
    code = (
        "import sys\nfrom rachel.cli.main import main\n"
        "try:\n    main(['search', '--help'])\nexcept SystemExit:\n    pass\n"
        "print('HEAVY', [m for m in ('tensorflow', 'keras', 'kfp', 'google.cloud.storage')"
        " if m in sys.modules])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "--fail-if-not-promoted" in done.stdout and "HEAVY []" in done.stdout
