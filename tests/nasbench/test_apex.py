"""Ape-X training end to end on the <=5-vertex cells (tiny network, real Keras): the double-Q
update, checkpoints and resume, actor processes, the trained agent as a searcher."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rachel.core.nasbench import apex
from rachel.core.nasbench.agent import AgentConfig, masked_argmax, observation_from_ids
from rachel.core.nasbench.policy import AgentSearcher, TrainedAgent
from rachel.core.nasbench.replay import Batch

TINY = AgentConfig.smoke()
SMALL = (2, 5)


def test_learner_update_is_double_q_with_n_step_targets(small_index):
    # a fixed target (no sync within the test) and a larger step, so that fitting shows
    learner = apex.Learner(
        TINY.replace(learning_rate=1e-3, target_update_period=10_000), small_index.encodings
    )
    rng = np.random.default_rng(0)
    ids = rng.integers(0, len(small_index), size=(16, 9)).astype(np.int32)
    ids[:, 5:] = -1
    nxt = np.roll(ids, 1, axis=0)
    batch = Batch(
        ids,
        rng.integers(0, 5, size=16),
        rng.normal(size=16).astype(np.float32),
        np.where(np.arange(16) % 4 == 0, 0.0, 0.9**3).astype(np.float32),
        nxt,
    )
    learner.target.set_weights([w * 0.5 for w in learner.online.get_weights()])  # differ
    obs, mask = observation_from_ids(small_index.encodings, ids)
    nobs, nmask = observation_from_ids(small_index.encodings, nxt)
    q_online_next = learner.q_values(nobs, nmask)
    q_target_next = np.asarray(learner.target.predict_on_batch([nobs, nmask]))
    a_star = masked_argmax(q_online_next, nmask)
    y = batch.returns + batch.discounts * q_target_next[np.arange(16), a_star]
    expected_td = y - learner.q_values(obs, mask)[np.arange(16), batch.actions]
    td = learner.update(batch, np.ones(16, np.float32))
    np.testing.assert_allclose(td, expected_td, rtol=1e-4, atol=1e-4)
    # repeated steps on one batch reduce its TD error (the loss really trains the network)
    first = np.abs(td).mean()
    for _ in range(30):
        td = learner.update(batch, np.ones(16, np.float32))
    assert np.abs(td).mean() < first


def test_train_checkpoints_resume_and_search(small_index, small_dense_accuracy, tmp_path):
    out = str(tmp_path / "run")
    seen = []
    res = apex.train(
        TINY,
        small_index,
        small_dense_accuracy,
        out,
        vertex_range=SMALL,
        on_progress=seen.append,
        progress_every=20,
    )
    assert res.state["env_steps"] >= 400 and res.state["updates"] > 40
    assert seen and seen[-1]["env_steps"] == res.state["env_steps"]
    assert res.state["train_env_steps_per_second"] > 0
    latest = json.loads((tmp_path / "run" / "checkpoints" / "latest.json").read_text())
    ckpt = tmp_path / "run" / "checkpoints" / latest["checkpoint"]
    assert {p.name for p in ckpt.iterdir()} == {
        "online.npz",
        "target.npz",
        "optimizer.npz",
        "state.json",
    }
    # resume: a larger budget continues from the last checkpoint's counters
    more = TINY.replace(total_env_steps=600)
    res2 = apex.train(more, small_index, small_dense_accuracy, out, vertex_range=SMALL)
    assert res2.state["resumed_from"] == latest["checkpoint"]
    assert res2.state["updates"] > res.state["updates"]
    assert 600 <= res2.state["env_steps"] < 600 + 8 * 2
    # the saved agent loads and searches from given initial states, one trace per state
    agent = TrainedAgent.load(res2.agent_uri)
    assert agent.config == more and agent.meta["env_steps"] == res2.state["env_steps"]
    searcher = AgentSearcher(
        agent, small_index, small_dense_accuracy, vertex_range=SMALL, num_envs=8
    )
    states = [3, 50, 700, 1200, 2000, 5, 9, 11, 13, 17, 19]
    traces = searcher.run_batch(states, 0, 0)
    assert len(traces) == len(states)
    for s, t in zip(states, traces, strict=True):
        assert t.initial_accuracy == small_dense_accuracy[s]
        assert t.queried[0] == small_dense_accuracy[s]  # the episode starts at its state
        assert t.final_accuracy in t.queried.tolist() and len(t.queried) <= 33
    # epsilon = 1: uniformly random valid moves instead of the greedy policy
    wander = AgentSearcher(
        agent, small_index, small_dense_accuracy, vertex_range=SMALL, num_envs=8, epsilon=1.0
    ).run_batch(states, 0, 0)
    assert [t.initial_accuracy for t in wander] == [t.initial_accuracy for t in traces]
    assert any(
        len(a.queried) != len(b.queried) or not np.array_equal(a.queried, b.queried)
        for a, b in zip(wander, traces, strict=True)
    )


@pytest.mark.slow  # ~13 s on a quiet 2-core machine: a spawned process imports Keras
def test_actor_processes(small_index, small_dense_accuracy, tmp_path):
    cfg = TINY.replace(actor_processes=1, total_env_steps=300, updates_per_step=0.1)
    res = apex.train(
        cfg, small_index, small_dense_accuracy, str(tmp_path), vertex_range=SMALL, resume=False
    )
    assert res.state["env_steps"] >= 300 and res.state["updates"] >= 1
    # back-pressure keeps the replay ratio near the setting
    assert res.state["updates_per_env_step"] <= 0.1 + 64 * 8 / 300


def test_weights_run_on_jax(small_index, small_dense_accuracy, tmp_path):
    pytest.importorskip("jax")
    agent = TrainedAgent(TINY, apex.Learner(TINY, small_index.encodings).online.get_weights())
    uri = agent.save(tmp_path / "agent")
    rng = np.random.default_rng(0)
    ids = rng.integers(0, len(small_index), size=(4, 9))
    ids[:, 6:] = -1
    obs, mask = observation_from_ids(small_index.encodings, ids)
    np.savez(tmp_path / "x.npz", obs=obs, mask=mask)
    code = (
        "import sys, numpy as np\n"
        "from rachel.core.nasbench.policy import TrainedAgent\n"
        f"a = TrainedAgent.load({str(uri)!r})\n"
        f"x = np.load({str(tmp_path / 'x.npz')!r})\n"
        "q = a.q_values(x['obs'], x['mask'])\n"
        f"np.save({str(tmp_path / 'q.npy')!r}, q)\n"
        "import keras; assert keras.backend.backend() == 'jax'\n"
        "assert 'tensorflow' not in sys.modules, 'tensorflow imported'\n"
    )
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    np.testing.assert_allclose(
        np.load(tmp_path / "q.npy"), agent.q_values(obs, mask), rtol=1e-4, atol=1e-4
    )
    assert Path(uri, "weights.npz").stat().st_size > 0
