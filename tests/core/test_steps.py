"""The step functions on small real data, and the weighting / safety-net logic on
constructed validation logits."""

import json
import subprocess
import sys

import numpy as np
import pytest
from helpers.tiny import TINY, UNTIMED

from rachel.core import steps
from rachel.core.config import budget_config
from rachel.core.data.splits import DatasetSplits
from rachel.core.ensemble_state import (
    CANDIDATE_FILE,
    ENSEMBLE_FILE,
    METRICS_FILE,
    MODEL_FILE,
    VAL_LOGITS_FILE,
    EnsembleState,
)
from rachel.core.errors import CandidateFailedError
from rachel.core.search_space import ArchitectureSpec, Candidate, LayerTokens


def _fake_trained(folder, cid, iteration, index, logits, status="ok"):
    """A trained-candidate folder whose validation logits we choose."""
    folder.mkdir(parents=True)
    cand = Candidate(cid, iteration, index, ArchitectureSpec(), (LayerTokens(1, 0, index),))
    (folder / CANDIDATE_FILE).write_text(json.dumps(cand.to_json()))
    metrics = {"status": status, "train_seconds": 1.0, "started_at": 100.0 + index}
    if status == "ok":
        np.save(folder / VAL_LOGITS_FILE, logits)
        (folder / MODEL_FILE).write_text("not read by weigh_ensemble")
    else:
        metrics["error"] = "ResourceExhaustedError: OOM"
    (folder / METRICS_FILE).write_text(json.dumps(metrics))
    return folder


def _logits(labels, accuracy, seed, classes=10):
    rng = np.random.default_rng(seed)
    n = len(labels)
    target = np.where(rng.random(n) < accuracy, labels, (labels + 1) % classes)
    z = rng.normal(0, 0.3, (n, classes))
    z[np.arange(n), target] += 4.0
    return z.astype(np.float32)


def test_weigh_ensemble_rewards_and_safety_net(tiny_fashion, tmp_path):
    # The paper's fixed-epoch Adam fit: a bad member can raise the fitted objective, so the
    # safety net can fire.  (Solved weights never get worse; see the next test.)
    cfg = budget_config("smoke", **TINY, ensemble_solver="adam").replace(**UNTIMED)
    y = DatasetSplits.load(tiny_fashion).y_val
    it0 = [
        _fake_trained(tmp_path / "c0", "it000-c00", 0, 0, _logits(y, 0.6, 1)),
        _fake_trained(tmp_path / "c1", "it000-c01", 0, 1, _logits(y, 0.9, 2)),
        _fake_trained(tmp_path / "c2", "it000-c02", 0, 2, None, status="failed"),
    ]
    e0 = steps.weigh_ensemble(cfg, 0, tiny_fashion, None, it0, tmp_path / "ens0")
    assert e0["best_candidate"] == "it000-c01" and e0["accepted"]
    assert e0["rewards"]["it000-c02"] is None  # a failed candidate is recorded, not fatal
    assert e0["rewards"]["it000-c01"] > e0["rewards"]["it000-c00"]

    # Iteration 1: both candidates are much worse than the accepted objective.
    it1 = [
        _fake_trained(tmp_path / "d0", "it001-c00", 1, 0, _logits(y, 0.05, 3) * 3),
        _fake_trained(tmp_path / "d1", "it001-c01", 1, 1, _logits(y, 0.02, 4) * 3),
    ]
    e1 = steps.weigh_ensemble(cfg, 1, tiny_fashion, tmp_path / "ens0", it1, tmp_path / "ens1")
    assert e1["safety_net_activated"] and not e1["accepted"]
    state = EnsembleState.read(tmp_path / "ens1")
    assert [m["candidate_id"] for m in state.members] == ["it000-c01", "it000-c01"]
    assert state.members[1]["reused"] and state.safety_net_activations == 1
    assert state.best_candidate_id == "it000-c01"
    assert state.candidates_trained == 5 and state.candidates_failed == 1

    # Iteration 2: a candidate that helps is accepted and extends the ensemble.
    it2 = [_fake_trained(tmp_path / "f0", "it002-c00", 2, 0, _logits(y, 0.95, 5))]
    e2 = steps.weigh_ensemble(cfg, 2, tiny_fashion, tmp_path / "ens1", it2, tmp_path / "ens2")
    assert e2["accepted"] and e2["members"] == ["it000-c01", "it000-c01", "it002-c00"]


def test_solved_weights_give_a_bad_member_no_weight(tiny_fashion, tmp_path):
    cfg = budget_config("smoke", **TINY, ensemble_solver="lbfgs").replace(**UNTIMED)
    y = DatasetSplits.load(tiny_fashion).y_val
    good = [_fake_trained(tmp_path / "c0", "it000-c00", 0, 0, _logits(y, 0.9, 2))]
    e0 = steps.weigh_ensemble(cfg, 0, tiny_fashion, None, good, tmp_path / "ens0")
    bad = [_fake_trained(tmp_path / "d0", "it001-c00", 1, 0, _logits(y, 0.02, 4) * 3)]
    e1 = steps.weigh_ensemble(cfg, 1, tiny_fashion, tmp_path / "ens0", bad, tmp_path / "ens1")
    assert e1["accepted"] and not e1["safety_net_activated"]
    assert e1["objective"] <= e0["objective"] + 1e-6  # the optimum can only improve
    state = EnsembleState.read(tmp_path / "ens1")
    assert state.weights[1] < 1e-3


def test_all_candidates_failing_on_an_empty_ensemble_stops(tiny_fashion, tmp_path):
    cfg = budget_config("smoke", **TINY).replace(**UNTIMED)
    dirs = [_fake_trained(tmp_path / "c0", "it000-c00", 0, 0, None, status="failed")]
    with pytest.raises(CandidateFailedError, match="every candidate"):
        steps.weigh_ensemble(cfg, 0, tiny_fashion, None, dirs, tmp_path / "ens")
    assert not (tmp_path / "ens").exists()  # nothing half-written


def test_no_ensemble_ablation_keeps_one_member(tiny_fashion, tmp_path):
    cfg = budget_config("smoke", **TINY, ensemble=False).replace(**UNTIMED)
    y = DatasetSplits.load(tiny_fashion).y_val
    a = [_fake_trained(tmp_path / "a", "it000-c00", 0, 0, _logits(y, 0.7, 1))]
    steps.weigh_ensemble(cfg, 0, tiny_fashion, None, a, tmp_path / "e0")
    b = [_fake_trained(tmp_path / "b", "it001-c00", 1, 0, _logits(y, 0.9, 2))]
    entry = steps.weigh_ensemble(cfg, 1, tiny_fashion, tmp_path / "e0", b, tmp_path / "e1")
    assert entry["members"] == ["it001-c00"]


def test_each_iteration_records_its_overhead_beyond_its_candidates(tiny_fashion, tmp_path):
    """Wall time between two weighs less the rounds of the slowest candidate: what task
    start-ups cost, which the planner keeps for the next iteration."""
    cfg = budget_config("smoke", **{**TINY, "iterations": 3}).replace(time_budget_seconds=600.0)
    y = DatasetSplits.load(tiny_fashion).y_val

    def timed(name, cid, index, step):
        it = int(cid[2:5])
        folder = _fake_trained(tmp_path / name, cid, it, index, _logits(y, 0.8, index))
        metrics = json.loads((folder / METRICS_FILE).read_text())
        (folder / METRICS_FILE).write_text(json.dumps({**metrics, "step_seconds": step}))
        return folder

    it0 = [timed("a0", "it000-c00", 0, 20.0), timed("a1", "it000-c01", 1, 30.0)]
    e0 = steps.weigh_ensemble(
        cfg, 0, tiny_fashion, None, it0, tmp_path / "e0", elapsed_seconds=70.0
    )
    assert e0["iteration_overhead_seconds"] == pytest.approx(70.0 - 2 * 30.0)  # one worker
    it1 = [timed("b0", "it001-c00", 0, 25.0), timed("b1", "it001-c01", 1, 35.0)]
    e1 = steps.weigh_ensemble(
        cfg, 1, tiny_fashion, tmp_path / "e0", it1, tmp_path / "e1", elapsed_seconds=540.0
    )
    assert e1["iteration_overhead_seconds"] == pytest.approx(540.0 - 70.0 - 2 * 35.0)
    # 45 s left would fit two rounds of 22.5 s (>= half of the ~41-s estimate), but not
    # after an iteration that cost 400 s beyond its candidates
    assert e1["next"]["action"] == "stop"


def _config(**overrides):
    return budget_config("smoke", **{**TINY, **overrides}).replace(**UNTIMED)


def _chain(cfg, splits, tmp_path, iterations, *, model_bytes=0, uris=None):
    """Weigh ``iterations`` iterations of two fake candidates each (every candidate better
    than the last, so each iteration accepts one); returns the ensemble folders."""
    y = DatasetSplits.load(splits).y_val
    ensembles, previous = [], None
    for it in range(iterations):
        dirs = []
        for k in range(2):
            cid = f"it{it:03d}-c{k:02d}"
            folder = _fake_trained(
                tmp_path / "cands" / cid,
                cid,
                it,
                k,
                _logits(y, 0.5 + 0.04 * it + 0.01 * k, 10 * it + k),
            )
            if model_bytes:
                (folder / MODEL_FILE).write_bytes(b"w" * model_bytes)
            dirs.append(folder)
        out = tmp_path / "ens" / f"it{it:03d}"
        steps.weigh_ensemble(
            cfg, it, splits, previous, dirs, out, candidate_uris=uris(dirs) if uris else None
        )
        ensembles.append(out)
        previous = out
    return ensembles


def _folder_bytes(folder):
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def test_ensembles_hold_references_and_no_member_files(tiny_fashion, tmp_path):
    """Each ensemble artifact is one ensemble.json whose members point at their trained
    candidates; N iterations write O(N) bytes of ensemble state, however large the members
    (copying them, as format 1 did, wrote sum_i i * member bytes)."""
    cfg = _config(iterations=8)
    member = 200_000  # bytes of each fake model.keras
    ensembles = _chain(cfg, tiny_fashion, tmp_path, 8, model_bytes=member)
    sizes = []
    for it, folder in enumerate(ensembles):
        assert sorted(p.name for p in folder.iterdir()) == [ENSEMBLE_FILE]
        record = json.loads((folder / ENSEMBLE_FILE).read_text())
        assert record["format"] == 2
        members = [m["candidate_id"] for m in record["members"]]
        assert len(members) == it + 1
        assert [m["uri"] for m in record["members"]] == [
            f"../../cands/{cid}" for cid in members
        ]  # relative: the run folder can move
        state = EnsembleState.read(folder)
        assert state.member_uri(members[-1]) == str(tmp_path / "cands" / members[-1])
        sizes.append(_folder_bytes(folder))
    # The record grows by one member and one history entry per iteration, never by a member.
    growth = np.diff(sizes)
    assert growth.max() < 4_000 and growth.max() - growth.min() < 1_000
    assert sum(sizes) < member  # eight iterations of state: less than one member's model
    copied = sum((it + 1) * _folder_bytes(tmp_path / "cands" / "it000-c00") for it in range(8))
    assert copied > 100 * sum(sizes)  # what format 1 wrote for the same run


def test_a_moved_run_folder_keeps_its_members(tiny_fashion, tmp_path):
    import shutil

    cfg = _config(iterations=2)
    ensembles = _chain(cfg, tiny_fashion, tmp_path / "run", 2)
    before = EnsembleState.read(ensembles[-1]).member_logits()
    shutil.move(tmp_path / "run", tmp_path / "moved")
    after = EnsembleState.read(tmp_path / "moved" / "ens" / "it001").member_logits()
    for a, b in zip(before, after, strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_deleted_member_is_a_clear_error_and_the_controller_does_not_need_it(
    tiny_fashion, tmp_path
):
    import shutil

    from rachel.core.errors import ArtifactError

    cfg = _config(iterations=3, controller="random")
    ensembles = _chain(cfg, tiny_fashion, tmp_path, 2)
    first = EnsembleState.read(ensembles[-1]).members[0]["candidate_id"]
    gone = tmp_path / "cands" / first
    shutil.rmtree(gone)
    with pytest.raises(ArtifactError, match=rf"member {first} .* has no val_logits\.npy") as err:
        EnsembleState.read(ensembles[-1]).member_logits()
    assert str(gone) in str(err.value) and "by reference" in str(err.value)
    with pytest.raises(ArtifactError, match=f"member {first}"):
        steps.weigh_ensemble(cfg, 2, tiny_fashion, ensembles[-1], [], tmp_path / "e2")
    with pytest.raises(ArtifactError, match=f"member {first}"):
        steps.evaluate_ensemble(cfg, tiny_fashion, ensembles[-1], tmp_path / "final")
    assert not (tmp_path / "e2").exists() and not (tmp_path / "final").exists()
    # The controller update reads the latest rewards from ensemble.json alone.
    steps.generate_candidates(cfg, 0, None, None, tmp_path / "gen")
    update = steps.update_controller(cfg, tmp_path / "gen", ensembles[0], tmp_path / "ctrl")
    assert update["iteration"] == 0 and update["episodes"] == 2


def test_a_format_1_ensemble_with_copied_members_is_still_read(tiny_fashion, tmp_path):
    import shutil

    cfg = _config(iterations=2)
    (new,) = _chain(cfg, tiny_fashion, tmp_path, 1)
    (first,) = EnsembleState.read(new).members
    old = tmp_path / "old"  # what the format-1 code wrote: members copied inside
    record = json.loads((new / ENSEMBLE_FILE).read_text())
    record["format"] = 1
    for member in record["members"]:
        shutil.copytree(
            tmp_path / "cands" / member["candidate_id"], old / "members" / member["candidate_id"]
        )
        del member["uri"]
    (old / ENSEMBLE_FILE).write_text(json.dumps(record))
    shutil.rmtree(tmp_path / "cands")
    y = DatasetSplits.load(tiny_fashion).y_val
    nxt = [_fake_trained(tmp_path / "d0", "it001-c00", 1, 0, _logits(y, 0.95, 5))]
    entry = steps.weigh_ensemble(cfg, 1, tiny_fashion, old, nxt, tmp_path / "e1")
    assert entry["members"] == [first["candidate_id"], "it001-c00"]
    refs = [m["uri"] for m in json.loads((tmp_path / "e1" / ENSEMBLE_FILE).read_text())["members"]]
    assert refs == [f"../old/members/{first['candidate_id']}", "../d0"]  # the copy, where it is


def test_an_ensemble_of_a_newer_format_is_refused(tmp_path):
    from rachel.core.errors import ArtifactError

    (tmp_path / ENSEMBLE_FILE).write_text(json.dumps({"format": 3, "members": []}))
    with pytest.raises(ArtifactError, match="format 3"):
        EnsembleState.read(tmp_path)


def test_a_reference_no_reader_can_follow_is_refused_when_recorded(tiny_fashion, tmp_path):
    from rachel.core.errors import StorageError

    y = DatasetSplits.load(tiny_fashion).y_val
    dirs = [_fake_trained(tmp_path / "c0", "it000-c00", 0, 0, _logits(y, 0.7, 1))]
    with pytest.raises(StorageError, match="gs:// pipeline root"):  # e.g. KFP's MinIO default
        steps.weigh_ensemble(
            _config(),
            0,
            tiny_fashion,
            None,
            dirs,
            tmp_path / "e",
            candidate_uris=["minio://mlpipeline/v2/artifacts/model"],
        )
    assert not (tmp_path / "e").exists()


def test_members_by_reference_on_gcs(tiny_fashion, tmp_path, gcs_bucket):
    """As on a cluster: each weigh reads its candidates from a local download (deleted after
    the task, as a pod is) and records their gs:// URIs; the next weigh and the controller
    update read earlier members from the bucket."""
    import shutil

    from rachel.core import storage

    cfg = _config(iterations=3, controller="random")
    root = f"{gcs_bucket}/root"

    def upload(dirs):
        uris = [f"{root}/{d.name}" for d in dirs]
        for d, uri in zip(dirs, uris, strict=True):
            storage.upload_dir(d, uri)
        return uris

    ensembles = _chain(cfg, tiny_fashion, tmp_path, 3, uris=upload)
    shutil.rmtree(tmp_path / "cands")  # no later "pod" has the downloads
    record = json.loads((ensembles[-1] / ENSEMBLE_FILE).read_text())
    assert [m["uri"] for m in record["members"]] == [
        f"{root}/{m['candidate_id']}" for m in record["members"]
    ]
    assert len(record["members"]) == 3
    logits = EnsembleState.read(ensembles[-1]).member_logits()  # three reads from the bucket
    assert len(logits) == 3 and logits[0].shape == (200, 10)
    steps.generate_candidates(cfg, 0, None, None, tmp_path / "gen")
    assert (
        steps.update_controller(cfg, tmp_path / "gen", ensembles[0], tmp_path / "ctrl")["episodes"]
        == 2
    )
    # Candidates read straight from the bucket work too (their URIs are recorded as given).
    y = DatasetSplits.load(tiny_fashion).y_val
    late = _fake_trained(tmp_path / "late" / "it003-c00", "it003-c00", 3, 0, _logits(y, 0.99, 9))
    (uri,) = upload([late])
    entry = steps.weigh_ensemble(
        cfg.replace(iterations=4), 3, tiny_fashion, ensembles[-1], [uri], tmp_path / "e3"
    )
    assert entry["accepted"] and EnsembleState.read(tmp_path / "e3").member_uri("it003-c00") == uri
    storage.delete_tree(uri)
    from rachel.core.errors import ArtifactError

    with pytest.raises(ArtifactError, match=f"member it003-c00 .*{uri}"):
        EnsembleState.read(tmp_path / "e3").member_logits()


def _one_candidate():
    return Candidate("it000-c00", 0, 0, ArchitectureSpec(), (LayerTokens(1, 0, 0),)).to_json()


def test_a_recorded_schedule_reaches_the_trainer_with_its_replans_and_cut():
    schedule = {
        "epochs": 3,
        "examples": 900,
        "replans": [{"after": 1, "epochs": 2, "examples": 800}],
        "cut": {"epoch": 1, "batches": 5},
    }
    raw = {**_one_candidate(), "schedule": schedule}
    candidate = Candidate.from_json(json.loads(json.dumps(raw)))  # as a plan carries it
    settings = steps.training_settings(budget_config("smoke"), 3, candidate)
    assert (settings.epochs, settings.train_examples, settings.time_limit) == (3, 900, None)
    assert settings.replans == ({"after": 1, "epochs": 2, "examples": 800},)
    assert settings.cut == (1, 5)


@pytest.mark.parametrize(
    "error",
    [
        MemoryError("simulated host out-of-memory"),
        type("ResourceExhaustedError", (RuntimeError,), {})("OOM when allocating tensor"),
        RuntimeError("XlaRuntimeError: RESOURCE_EXHAUSTED: out of memory allocating 4 GiB"),
        TimeoutError("storage read timed out"),
    ],
    ids=["host-oom", "tf-oom", "xla-oom", "timeout"],
)
def test_transient_training_failure_raises_and_writes_nothing(
    tiny_fashion, tmp_path, monkeypatch, error
):
    import rachel.core.training as training
    from rachel.core.errors import TransientError

    def fail(*args, **kwargs):
        raise error

    monkeypatch.setattr(training, "train_candidate_model", fail)
    cfg = budget_config("smoke", **TINY).replace(**UNTIMED)
    with pytest.raises(TransientError, match="transiently") as info:
        steps.train_candidate(cfg, tiny_fashion, _one_candidate(), tmp_path / "m")
    assert info.value.exit_code == 7
    assert not (tmp_path / "m").exists() and list(tmp_path.iterdir()) == []  # no cached failure


def test_deterministic_training_failure_is_recorded(tiny_fashion, tmp_path, monkeypatch):
    import rachel.core.training as training

    def cannot_build(*args, **kwargs):
        raise ValueError("Negative dimension size caused by subtracting 3 from 1")

    monkeypatch.setattr(training, "train_candidate_model", cannot_build)
    cfg = budget_config("smoke", **TINY).replace(**UNTIMED)
    summary = steps.train_candidate(cfg, tiny_fashion, _one_candidate(), tmp_path / "m")
    assert summary["status"] == "failed" and "Negative dimension" in summary["error"]
    assert json.loads((tmp_path / "m" / METRICS_FILE).read_text())["status"] == "failed"


def test_diverged_candidate_is_recorded_as_failed(tiny_fashion, tmp_path, monkeypatch):
    import rachel.core.training as training

    real = training.train_candidate_model

    def diverge(*args, **kwargs):
        result = real(*args, **kwargs)
        result.val_logits[0, 0] = np.nan
        return result

    monkeypatch.setattr(training, "train_candidate_model", diverge)
    cfg = budget_config("smoke", **TINY).replace(**UNTIMED, epochs=1)
    summary = steps.train_candidate(cfg, tiny_fashion, _one_candidate(), tmp_path / "m")
    assert summary["status"] == "failed" and "diverged" in summary["error"]
    assert not (tmp_path / "m" / MODEL_FILE).exists()


@pytest.fixture(scope="module")
def trained_ensemble(tiny_fashion, tmp_path_factory):
    """generate -> train x2 -> weigh -> update -> evaluate, on real Fashion-MNIST."""
    tmp = tmp_path_factory.mktemp("steps")
    cfg = budget_config("smoke", **TINY).replace(**UNTIMED)
    cands = steps.generate_candidates(cfg, 0, None, None, tmp / "ctrl_gen")
    assert [c["candidate_id"] for c in cands] == ["it000-c00", "it000-c01"]
    dirs = []
    for cand in cands:
        summary = steps.train_candidate(cfg, tiny_fashion, cand, tmp / cand["candidate_id"])
        assert summary["status"] == "ok", summary
        dirs.append(tmp / cand["candidate_id"])
    steps.weigh_ensemble(cfg, 0, tiny_fashion, None, dirs, tmp / "ens")
    update = steps.update_controller(cfg, tmp / "ctrl_gen", tmp / "ens", tmp / "ctrl")
    assert update["episodes"] == 2
    metrics = steps.evaluate_ensemble(cfg, tiny_fashion, tmp / "ens", tmp / "final")
    return tmp, metrics


def test_train_candidate_writes_model_and_logits(trained_ensemble):
    tmp, _ = trained_ensemble
    metrics = json.loads((tmp / "it000-c00" / METRICS_FILE).read_text())
    assert metrics["status"] == "ok" and metrics["epochs_run"] == 1 and "seed" in metrics
    assert np.load(tmp / "it000-c00" / VAL_LOGITS_FILE).shape == (200, 10)


def test_evaluate_reports_metrics(trained_ensemble):
    tmp, metrics = trained_ensemble
    for key in (
        "test_accuracy",
        "macro_f1",
        "params",
        "wall_seconds",
        "inference_seconds",
        "confusion_matrix",
        "safety_net_activations",
        "device_hours",
        "members",
        "seed",
    ):
        assert key in metrics
    cm = np.array(metrics["confusion_matrix"])
    assert cm.shape == (10, 10) and cm.sum() == 200
    assert metrics["params"] == sum(m["params"] for m in metrics["members"])
    assert (
        json.loads((tmp / "final" / "metrics.json").read_text())["test_accuracy"]
        == metrics["test_accuracy"]
    )
    assert "# RACHEL search" in (tmp / "final" / "report.md").read_text()


EXPORT_CHECK = r"""
import sys
sys.modules["rachel"] = None  # this package must not be needed to serve the model
import json, numpy as np, keras, tensorflow as tf
folder, data = sys.argv[1], np.load(sys.argv[2])
x = data["x_test"][:16].astype("float32")
k = keras.saving.load_model(folder + "/model.keras")
s = tf.saved_model.load(folder + "/saved_model")
pk = k.predict(x, verbose=0)
ps = s.serve(tf.constant(x)).numpy()
print(json.dumps({"max_diff": float(np.abs(pk - ps).max()), "sum": float(pk.sum()),
                  "layers": sorted({type(l).__module__.split(".")[0] for l in k.layers})}))
"""


def test_export_loads_without_the_package(trained_ensemble, tiny_fashion):
    tmp, _ = trained_ensemble
    out = subprocess.run(
        [sys.executable, "-c", EXPORT_CHECK, str(tmp / "final"), str(tiny_fashion)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd="/",
    )
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["max_diff"] < 1e-4  # .keras and SavedModel agree
    assert result["sum"] == pytest.approx(16.0, rel=1e-4)  # rows are probabilities
    assert result["layers"] == ["keras"]


def test_training_is_reproducible_for_a_seed(tiny_fashion, tmp_path):
    cfg = budget_config("smoke", **TINY).replace(**UNTIMED)
    cand = Candidate("it000-c00", 0, 0, ArchitectureSpec(), (LayerTokens(1, 1, 0),)).to_json()
    a = steps.train_candidate(cfg, tiny_fashion, cand, tmp_path / "a")
    b = steps.train_candidate(cfg, tiny_fashion, cand, tmp_path / "b")
    assert a["seed"] == b["seed"]
    np.testing.assert_array_equal(
        np.load(tmp_path / "a" / VAL_LOGITS_FILE), np.load(tmp_path / "b" / VAL_LOGITS_FILE)
    )


def test_a_member_with_no_weight_is_left_out_of_the_export(trained_ensemble, tiny_fashion):
    import shutil

    tmp, _ = trained_ensemble
    cfg = budget_config("smoke", **TINY, ensemble_solver="lbfgs").replace(**UNTIMED)
    y = DatasetSplits.load(tiny_fashion).y_val
    useless = tmp / "useless"  # a real model whose validation logits point the wrong way
    shutil.copytree(tmp / "it000-c01", useless)
    cand = json.loads((useless / CANDIDATE_FILE).read_text())
    cand.update(candidate_id="it001-c00", iteration=1)
    (useless / CANDIDATE_FILE).write_text(json.dumps(cand))
    np.save(useless / VAL_LOGITS_FILE, _logits(y, 0.0, 7) * 5)
    entry = steps.weigh_ensemble(cfg, 1, tiny_fashion, tmp / "ens", [useless], tmp / "ens_u")
    assert entry["accepted"] and "it001-c00" in entry["members"]
    metrics = steps.evaluate_ensemble(cfg, tiny_fashion, tmp / "ens_u", tmp / "final_u")
    assert metrics["pruned_members"] == ["it001-c00"]
    assert [m["candidate_id"] for m in metrics["members"]] == [entry["members"][0]]
    assert metrics["members"][0]["weight"] == pytest.approx(1.0)


def test_evaluate_loads_member_models_from_gcs(trained_ensemble, tiny_fashion, gcs_bucket):
    """Members referenced by gs:// URIs: their models are streamed to a temporary file and
    loaded from it; the exported ensemble is the one the local references give."""
    from rachel.core import storage

    tmp, metrics = trained_ensemble
    cfg = budget_config("smoke", **TINY).replace(**UNTIMED)
    uris = []
    for cid in ("it000-c00", "it000-c01"):
        uris.append(f"{gcs_bucket}/cands/{cid}")
        storage.upload_dir(tmp / cid, uris[-1])
    steps.weigh_ensemble(cfg, 0, tiny_fashion, None, uris, tmp / "ens_gcs")
    assert EnsembleState.read(tmp / "ens_gcs").members[0]["uri"] in uris
    again = steps.evaluate_ensemble(cfg, tiny_fashion, tmp / "ens_gcs", tmp / "final_gcs")
    assert again["test_accuracy"] == pytest.approx(metrics["test_accuracy"], abs=1e-9)
    assert again["members"] == metrics["members"]


def test_a_time_limit_is_turned_into_a_recorded_schedule_that_replays(tiny_fashion, tmp_path):
    cfg = budget_config("smoke", **{**TINY, "epochs": 50}).replace(**UNTIMED)
    spec_tokens = (LayerTokens(1, 0, 0),)
    limited = Candidate("it000-c00", 0, 0, ArchitectureSpec(), spec_tokens, time_limit=3.0)
    a = steps.train_candidate(cfg, tiny_fashion, limited.to_json(), tmp_path / "a")
    schedule = a["schedule"]
    assert a["probe"]["time_limit"] == 3.0 and a["probe"]["seconds_per_example"] > 0
    assert 1 <= schedule["epochs"] < 50  # 50 epochs of 600 images do not fit in 3 s
    replay = Candidate("it000-c00", 0, 0, ArchitectureSpec(), spec_tokens, schedule=schedule)
    b = steps.train_candidate(cfg, tiny_fashion, replay.to_json(), tmp_path / "b")
    assert b["probe"] is None and b["schedule"] == schedule
    np.testing.assert_array_equal(
        np.load(tmp_path / "a" / VAL_LOGITS_FILE), np.load(tmp_path / "b" / VAL_LOGITS_FILE)
    )


def test_a_candidate_that_keeps_running_out_of_memory_is_failed_after_three_attempts(
    tiny_fashion, tmp_path, monkeypatch
):
    import rachel.core.training as training
    from rachel.core.errors import ArtifactError, TransientError

    def oom(*args, **kwargs):
        raise MemoryError("simulated out-of-memory")

    monkeypatch.setattr(training, "train_candidate_model", oom)
    cfg = budget_config("smoke", **TINY).replace(**UNTIMED)
    ckpt = str(tmp_path / ".ckpt")
    for attempt in (1, 2):
        with pytest.raises(TransientError, match=f"attempt {attempt} of 3"):
            steps.train_candidate(
                cfg, tiny_fashion, _one_candidate(), tmp_path / "m", checkpoint_uri=ckpt
            )
        assert not (tmp_path / "m").exists()
    summary = steps.train_candidate(
        cfg, tiny_fashion, _one_candidate(), tmp_path / "m", checkpoint_uri=ckpt
    )
    assert summary["status"] == "failed" and "on 3 attempts" in summary["error"]
    assert not (tmp_path / ".ckpt").exists()

    def our_error(*args, **kwargs):  # an error of ours that is not about storage
        raise ArtifactError("checkpoint holds 3 model variables, the model has 5")

    monkeypatch.setattr(training, "train_candidate_model", our_error)
    summary = steps.train_candidate(cfg, tiny_fashion, _one_candidate(), tmp_path / "m2")
    assert summary["status"] == "failed" and "checkpoint holds" in summary["error"]


class _Killed(BaseException):  # not an Exception: a kill is not a candidate failure
    pass


def _finish_model(splits_path, seed):
    """A tiny net, its builder (seeded) and a finish's training settings."""
    import keras

    from rachel.core.architecture import decode
    from rachel.core.search_space import ArchitectureSpec, BlockType, Layer
    from rachel.core.training import TrainingSettings

    splits = DatasetSplits.load(splits_path)
    spec = ArchitectureSpec((Layer(BlockType.STANDARD, 16),))

    def build():
        keras.utils.set_random_seed(seed)
        return decode(spec, tuple(splits.input_shape), splits.num_classes, pool_first=True)

    settings = TrainingSettings(
        epochs=2, batch_size=64, learning_rate=2e-3, patience=10, fill_time=True, seed=seed
    )
    return splits, build, settings


def _killed_after_second_epoch(monkeypatch, train):
    """Run ``train()`` until its checkpoint of epoch 1 is saved, then kill it."""
    _killed_after(monkeypatch, train, 1)


def _killed_and_resumed(monkeypatch, tmp_path, build, splits, settings, model, logits, last):
    """Train with a checkpoint, killed after epoch ``last``; resume, check that the resumed
    training ends with ``model``'s weights and ``logits``, and return its metrics."""
    from rachel.core import checkpoint as ckpt
    from rachel.core.training import fit_model

    point = ckpt.EpochCheckpoint(str(tmp_path / "ckpt"), "key")
    _killed_after(monkeypatch, lambda: fit_model(build(), splits, settings, checkpoint=point), last)
    resumed_model = build()
    resumed_logits, resumed = fit_model(resumed_model, splits, settings, checkpoint=point)
    np.testing.assert_array_equal(resumed_logits, logits)
    for a, b in zip(resumed_model.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    return resumed


def _killed_after(monkeypatch, train, last):
    from rachel.core import checkpoint as ckpt

    real_save = ckpt.EpochCheckpoint.save

    def save_then_die(self, epoch, state, arrays):
        real_save(self, epoch, state, arrays)
        if epoch == last:
            raise _Killed

    with monkeypatch.context() as patched:
        patched.setattr(ckpt.EpochCheckpoint, "save", save_then_die)
        with pytest.raises(_Killed):
            train()


def test_the_finish_replans_its_epochs_by_its_deadline_and_replays_them(
    tiny_fashion, tmp_path, monkeypatch
):
    """A live finish re-plans after its first (fast) epoch to fill the time it has; given
    back its recorded re-plans it trains exactly the same, and a run killed after a re-plan
    resumes from its checkpoint to the same weights."""
    import dataclasses
    import time

    from rachel.core.training import fit_model

    splits, build, settings = _finish_model(tiny_fashion, 3)
    live = build()
    _, first = fit_model(live, splits, settings, deadline=time.perf_counter() + 8.0, max_epochs=4)
    assert first["replans"] and first["replans"][0]["after"] == 1
    assert first["epochs_run"] == first["replans"][-1]["epochs"] > 2  # it used the time

    replay = dataclasses.replace(settings, replans=tuple(first["replans"]))
    model = build()
    logits, again = fit_model(model, splits, replay)
    assert again["replans"] == first["replans"] and again["epochs_run"] == first["epochs_run"]
    assert again["val_loss"] == first["val_loss"]

    resumed = _killed_and_resumed(monkeypatch, tmp_path, build, splits, replay, model, logits, 1)
    assert resumed["epochs_run"] == first["epochs_run"]


def test_a_candidate_shrinks_a_plan_that_would_overrun_its_deadline_and_replays_it(tiny_fashion):
    """A candidate planned for more epochs than its deadline allows re-plans down after its
    epochs (never up), ends by the deadline give or take an epoch, and given back its
    recorded re-plans trains exactly the same."""
    import dataclasses
    import time

    from rachel.core.training import fit_model

    splits, build, settings = _finish_model(tiny_fashion, 6)
    settings = dataclasses.replace(settings, epochs=200, fill_time=False)
    started = time.perf_counter()
    _, live = fit_model(build(), splits, settings, deadline=started + 4.0)
    seconds = time.perf_counter() - started
    plans = [settings.epochs] + [r["epochs"] for r in live["replans"]]
    assert live["replans"] and all(b <= a for a, b in zip(plans, plans[1:], strict=False))
    assert live["epochs_run"] == plans[-1] < 200
    assert seconds < 4.0 + 2 * seconds / live["epochs_run"]  # within an epoch or so

    replay = dataclasses.replace(settings, replans=tuple(live["replans"]))
    _, again = fit_model(build(), splits, replay)
    assert again["epochs_run"] == live["epochs_run"] and again["val_loss"] == live["val_loss"]


def test_a_deadline_inside_an_epoch_cuts_it_and_the_cut_replays_and_resumes(
    tiny_fashion, tmp_path, monkeypatch
):
    """The deadline passes inside an epoch: that epoch ends after the batch that found it
    so, is validated, and is the last.  Given back its cut the training trains exactly the
    same, and killed after its first epoch it resumes to the same weights.  The clock is a
    fake one that only the trainer reads, a tick per reading, so the cut lands in the same
    place on any machine."""
    import dataclasses
    import itertools
    import types

    from rachel.core import training
    from rachel.core.training import fit_model

    splits, build, settings = _finish_model(tiny_fashion, 7)
    settings = dataclasses.replace(settings, epochs=3, fill_time=False)  # 9 batches an epoch

    def slowing():  # the host slows 3x after the first epoch: no plan between epochs holds
        for n in itertools.count():
            yield n if n < 14 else 14 + 3 * (n - 14)

    ticks = slowing()
    with monkeypatch.context() as patched:
        patched.setattr(training, "time", types.SimpleNamespace(perf_counter=lambda: next(ticks)))
        _, live = fit_model(build(), splits, settings, deadline=30.0)
    cut = live["cut"]
    assert cut is not None and cut["epoch"] >= 1 and 0 < cut["batches"] < 9
    assert live["epochs_run"] == len(live["history"]["val_loss"]) == cut["epoch"] + 1

    replay = dataclasses.replace(
        settings, replans=tuple(live["replans"]), cut=(cut["epoch"], cut["batches"])
    )
    model = build()
    logits, again = fit_model(model, splits, replay)
    assert again["cut"] == cut and again["val_loss"] == live["val_loss"]
    assert again["examples_trained"] == live["examples_trained"]

    resumed = _killed_and_resumed(monkeypatch, tmp_path, build, splits, replay, model, logits, 0)
    assert resumed["cut"] == cut and resumed["epochs_run"] == live["epochs_run"]


def test_a_live_finish_killed_after_a_replan_resumes_with_its_replans(
    tiny_fashion, tmp_path, monkeypatch
):
    """Killed after its second epoch, a live (deadline-driven) finish resumes with the
    re-plans its checkpoint recorded and the time it had left, and ends on its last plan."""
    import time

    from rachel.core import checkpoint as ckpt
    from rachel.core.training import fit_model

    splits, build, settings = _finish_model(tiny_fashion, 4)
    point = ckpt.EpochCheckpoint(str(tmp_path / "ckpt"), "key")

    def live():  # 8 s from now, on each call
        deadline = time.perf_counter() + 8.0
        return fit_model(
            build(), splits, settings, checkpoint=point, deadline=deadline, max_epochs=5
        )

    _killed_after_second_epoch(monkeypatch, live)
    book = point.peek()["training"]
    assert book["replans"] and 0 < book["seconds_left"] <= 8.0
    _, resumed = live()
    assert resumed["replans"][: len(book["replans"])] == book["replans"]
    assert resumed["epochs_run"] == resumed["replans"][-1]["epochs"] > 2
    assert len(resumed["history"]["val_loss"]) == resumed["epochs_run"]


def test_the_finish_trains_to_its_plan_where_a_candidate_stops_early(tiny_fashion):
    """No epoch improves val_loss by a min_delta of 10: a candidate stops after `patience`
    epochs, the finish trains every planned epoch."""
    import dataclasses

    from rachel.core.training import fit_model

    splits, build, settings = _finish_model(tiny_fashion, 5)
    settings = dataclasses.replace(settings, epochs=3, patience=1, min_delta=10.0)
    _, candidate = fit_model(build(), splits, dataclasses.replace(settings, fill_time=False))
    assert candidate["epochs_run"] == 2
    _, finish = fit_model(build(), splits, settings)
    assert finish["epochs_run"] == 3


def test_the_finish_keeps_its_last_epoch_where_a_candidate_keeps_its_lowest_val_loss(
    tiny_fashion, monkeypatch
):
    """Validation losses 0.5, 0.3, 0.4: a candidate restores epoch 2, the finish keeps
    epoch 3 (the end of its annealed schedule), its weights and its validation logits."""
    import dataclasses

    from rachel.core import training
    from rachel.core.input_pipeline import normalise

    splits, build, settings = _finish_model(tiny_fashion, 5)
    settings = dataclasses.replace(settings, epochs=3)

    def scripted(losses):
        it = iter(losses)
        monkeypatch.setattr(training, "cross_entropy", lambda logits, labels: next(it))

    scripted([0.5, 0.3, 0.4])
    _, candidate = training.fit_model(
        build(), splits, dataclasses.replace(settings, fill_time=False)
    )
    assert (candidate["best_epoch"], candidate["val_loss"]) == (2, 0.3)
    scripted([0.5, 0.3, 0.4])
    model = build()
    logits, finish = training.fit_model(model, splits, settings)
    assert (finish["epochs_run"], finish["best_epoch"], finish["val_loss"]) == (3, 3, 0.4)
    assert finish["val_accuracy"] == finish["history"]["val_accuracy"][-1]
    predicted = model.predict(normalise(splits.x_val), batch_size=512, verbose=0)
    np.testing.assert_allclose(logits, predicted, rtol=1e-5, atol=1e-5)
