"""The candidate trainer and the ensemble export under another Keras backend (JAX on CPU):
a GPU node may offer JAX with CUDA and no TensorFlow build."""

import json
import os
import subprocess
import sys

import pytest

SCRIPT = r"""
import json, sys


class NoTensorFlow:  # the GPU machine: JAX with CUDA, no TensorFlow build at all
    def find_spec(self, name, path=None, target=None):
        if name == "tensorflow" or name.startswith("tensorflow."):
            raise ImportError("tensorflow is not installed here")


sys.meta_path.insert(0, NoTensorFlow())
import numpy as np
import keras
from rachel.core import steps
from rachel.core.config import budget_config
from rachel.core.data.splits import DatasetSplits
from rachel.core.export import build_servable, save_servable
from rachel.core.search_space import ArchitectureSpec, Candidate, LayerTokens

splits_path, out = sys.argv[1], sys.argv[2]
cfg = budget_config("smoke", epochs=2, max_width=16).replace(
    time_budget_seconds=None, train_threads=None, max_candidate_seconds=None)
cand = Candidate("it000-c00", 0, 0, ArchitectureSpec(),
                 (LayerTokens(1, 0, 0), LayerTokens(1, 1, 0))).to_json()
summary = steps.train_candidate(cfg, splits_path, cand, out + "/cand")
model = keras.saving.load_model(out + "/cand/model.keras")
splits = DatasetSplits.load(splits_path)
servable = build_servable([model], [1.0], tuple(splits.input_shape))
import pathlib; pathlib.Path(out, "export").mkdir()
written = save_servable(servable, out + "/export")
reloaded = keras.saving.load_model(out + "/export/model.keras")
probs = np.asarray(reloaded.predict(splits.x_test.astype("float32"), verbose=0))

# The finish: continued from the candidate's weights, re-planned by its deadline (the
# re-plannable cosine re-traces the train step), then replayed from its recorded schedule.
finish_cfg = cfg.replace(finish_epochs=200, finish_fraction=0.4, time_budget_seconds=120.0)
warm = dict(cand, candidate_id="finish", warm_start=out + "/cand", time_limit=8.0)
live = steps.train_candidate(finish_cfg, splits_path, warm, out + "/finish")
recorded = json.load(open(out + "/finish/metrics.json"))["schedule"]
replay = dict(warm, time_limit=None, schedule=recorded)
again = steps.train_candidate(finish_cfg, splits_path, replay, out + "/finish_replay")
print(json.dumps({
    "finish_replans": len(recorded.get("replans", [])),
    "finish_same": live["val_loss"] == again["val_loss"] and live["status"] == "ok",
    "backend": keras.backend.backend(), "status": summary["status"],
    "trained_backend": summary.get("backend"), "written": written,
    "test_accuracy": float((probs.argmax(-1) == splits.y_test).mean()),
    "sums_to_one": bool(np.allclose(probs.sum(-1), 1.0, atol=1e-4)),
}))
"""


@pytest.mark.e2e
def test_train_and_export_under_jax(tiny_fashion, tmp_path):
    pytest.importorskip("jax")  # a third-party backend; the project's modules are imported
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tiny_fashion), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["backend"] == "jax" and result["trained_backend"] == "jax"
    assert result["status"] == "ok" and result["sums_to_one"]
    assert result["test_accuracy"] > 0.2  # chance is 0.1
    assert result["written"] == {"keras": "model.keras"}  # no SavedModel without TensorFlow
    assert result["finish_replans"] >= 1 and result["finish_same"]
