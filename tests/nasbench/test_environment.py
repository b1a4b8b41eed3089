"""The incremental MDP: reward shaping, masks, episode length, seeds, modes, Gymnasium API."""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from rachel.core.errors import ConfigError, MissingMetricsError
from rachel.core.nasbench.environment import (
    NasBenchEnv,
    NasBenchVectorEnv,
    accuracy_for_index,
)

SMALL = {"vertex_range": (2, 5)}


def last_valid(mask: np.ndarray) -> np.ndarray:
    """Per env the highest valid action (a neighbour when there is one)."""
    return np.array([np.flatnonzero(m)[-1] for m in mask])


def test_observation_layout_and_mask(small_index, small_dense_accuracy):
    env = NasBenchVectorEnv(
        small_index, small_dense_accuracy, num_envs=6, max_neighbours=5, seed=0, **SMALL
    )
    obs, info = env.reset()
    assert obs["observations"].shape == (6, 6, 56) and obs["observations"].dtype == np.float32
    assert obs["action_mask"].shape == (6, 6)
    for b in range(6):
        cur = info["cell_id"][b]
        np.testing.assert_array_equal(obs["observations"][b, 0], small_index.encodings[cur])
        deg = len(small_index.neighbours(cur))
        assert obs["action_mask"][b].sum() == 1 + min(deg, 5)
        assert obs["action_mask"][b, 0] == 1
        shown = env.core.shown[b]
        assert set(shown[shown >= 0].tolist()) <= set(small_index.neighbours(cur).tolist())
        # padding rows are zero
        assert not obs["observations"][b, 1 + min(deg, 5) :].any()
    assert env.observation_space.contains(obs)


def test_subsample_when_more_than_n(small_index, small_dense_accuracy):
    env = NasBenchVectorEnv(
        small_index, small_dense_accuracy, num_envs=1, max_neighbours=3, seed=1, **SMALL
    )
    deg = small_index.degrees()
    many = int(np.flatnonzero(deg > 10)[0])
    env.reset(options={"initial_ids": [many]})
    seen = set()
    for _ in range(20):
        env.core.refresh_shown()
        shown = env.core.shown[0]
        assert (shown >= 0).all() and len(set(shown.tolist())) == 3
        assert list(shown) == sorted(shown)
        seen |= set(shown.tolist())
    assert len(seen) > 3  # redrawn each time


def test_reward_shaping_and_telescoping(small_index, small_dense_accuracy):
    alpha = 6.0
    acc = small_dense_accuracy
    env = NasBenchVectorEnv(small_index, acc, num_envs=4, seed=2, episode_length=8, **SMALL)
    obs, info = env.reset()
    start = info["cell_id"].copy()
    prev = info["cell_id"].copy()
    total = np.zeros(4)
    for _ in range(5):
        a = last_valid(obs["action_mask"])
        obs, r, term, trunc, info = env.step(a)
        moved = a > 0
        expected = np.where(
            moved, np.exp(alpha * acc[info["cell_id"]]) - np.exp(alpha * acc[prev]), 0.0
        )
        assert not (term | trunc).any()
        np.testing.assert_allclose(r, expected)
        total += r
        prev = info["cell_id"].copy()
    np.testing.assert_allclose(total, np.exp(alpha * acc[prev]) - np.exp(alpha * acc[start]))


def test_zero_first_step_option(small_index, small_dense_accuracy):
    env = NasBenchVectorEnv(
        small_index, small_dense_accuracy, num_envs=3, seed=3, zero_first_step=True, **SMALL
    )
    obs, _ = env.reset()
    _, r, *_ = env.step(last_valid(obs["action_mask"]))
    assert (r == 0).all()
    obs = env.core.observation()
    _, r2, *_ = env.step(last_valid(obs["action_mask"]))
    assert (r2 != 0).any()


def test_episode_length_and_terminate(small_index, small_dense_accuracy):
    env = NasBenchVectorEnv(
        small_index, small_dense_accuracy, num_envs=2, seed=4, episode_length=16, **SMALL
    )
    obs, _ = env.reset()
    for t in range(16):
        a = last_valid(obs["action_mask"])
        a[1] = 0 if t == 3 else a[1]
        obs, r, term, trunc, info = env.step(a)
        if t == 3:
            assert term[1] and not trunc[1] and r[1] == 0.0
            assert info["_final_obs"][1] and 1 in info["final_env_index"]
            assert info["step"][1] == 0  # already reset (SAME_STEP autoreset)
        if t < 15 and not a[0] == 0:
            assert not trunc[0]
    # env 0 only ever moved (or terminated when stuck); after 16 moves it is truncated
    assert trunc[0] or term[0]


def test_truncation_at_exactly_episode_length(small_index, small_dense_accuracy):
    env = NasBenchEnv(small_index, small_dense_accuracy, episode_length=16, **SMALL)
    deg = small_index.degrees()
    # start somewhere with neighbours; a stuck walk would terminate instead
    obs, _ = env.reset(seed=5, options={"initial_ids": [int(np.argmax(deg))]})
    steps = 0
    while True:
        action = int(np.flatnonzero(obs["action_mask"])[-1])
        obs, r, term, trunc, info = env.step(action)
        steps += 1
        if term or trunc:
            break
    assert (trunc and steps == 16) or (term and action == 0)


def test_seed_determinism(small_index, small_dense_accuracy):
    def run(seed):
        env = NasBenchVectorEnv(
            small_index, small_dense_accuracy, num_envs=5, seed=seed, max_neighbours=4, **SMALL
        )
        obs, info = env.reset()
        rng = np.random.default_rng(99)
        ids, rewards = [info["cell_id"]], []
        for _ in range(40):
            mask = obs["action_mask"]
            a = np.array([rng.choice(np.flatnonzero(m)) for m in mask])
            obs, r, *_, info = env.step(a)
            ids.append(info["cell_id"])
            rewards.append(r)
        return np.array(ids), np.array(rewards)

    a_ids, a_r = run(7)
    b_ids, b_r = run(7)
    c_ids, _ = run(8)
    np.testing.assert_array_equal(a_ids, b_ids)
    np.testing.assert_array_equal(a_r, b_r)
    assert not np.array_equal(a_ids, c_ids)


def test_real_subset_restricts_states_and_neighbours(small_index, small_table_accuracy):
    known = ~np.isnan(small_table_accuracy)
    assert 0 < known.sum() < len(known)
    env = NasBenchVectorEnv(
        small_index, small_table_accuracy, num_envs=8, mode="real_subset", seed=6, **SMALL
    )
    obs, info = env.reset()
    for _ in range(50):
        assert known[info["cell_id"]].all()
        shown = env.core.shown
        assert known[shown[shown >= 0]].all()
        rng = np.random.default_rng(0)
        a = np.array([rng.choice(np.flatnonzero(m)) for m in obs["action_mask"]])
        obs, r, term, trunc, info = env.step(a)
        assert np.isfinite(r).all()


def test_tabular_mode_raises_on_missing_metrics(small_index, small_table_accuracy):
    known = ~np.isnan(small_table_accuracy)
    deg_unknown = np.array([(~known[small_index.neighbours(i)]).any() for i in range(len(known))])
    start = int(np.flatnonzero(known & deg_unknown)[0])
    env = NasBenchVectorEnv(
        small_index, small_table_accuracy, num_envs=1, max_neighbours=50, seed=0, **SMALL
    )
    obs, _ = env.reset(options={"initial_ids": [start]})
    shown = env.core.shown[0]
    k = int(np.flatnonzero((shown >= 0) & ~known[np.maximum(shown, 0)])[0])
    with pytest.raises(MissingMetricsError, match="no accuracy"):
        env.step(np.array([k + 1]))
    unknown = int(np.flatnonzero(~known)[0])
    with pytest.raises(MissingMetricsError):
        env.reset(options={"initial_ids": [unknown]})


def test_query_counting(small_index, small_dense_accuracy):
    env = NasBenchVectorEnv(small_index, small_dense_accuracy, num_envs=2, seed=9, **SMALL)
    obs, info = env.reset()
    assert env.queries.tolist() == [1, 1]
    visited = [{int(info["cell_id"][0])}, {int(info["cell_id"][1])}]
    for _ in range(30):
        obs, r, term, trunc, info = env.step(last_valid(obs["action_mask"]))
        for b in range(2):
            visited[b].add(int(info["cell_id"][b]))
            if "final_cell_id" in info and b in info["final_env_index"].tolist():
                j = info["final_env_index"].tolist().index(b)
                visited[b].add(int(info["final_cell_id"][j]))
    assert env.queries.tolist() == [len(v) for v in visited]


def test_masked_action_is_terminate_or_strict_error(small_index, small_dense_accuracy):
    env = NasBenchEnv(small_index, small_dense_accuracy, max_neighbours=50, **SMALL)
    obs, _ = env.reset(seed=0)
    masked = int(np.flatnonzero(obs["action_mask"] == 0)[0])
    _, r, term, trunc, info = env.step(masked)
    assert term and r == 0.0 and info["invalid_action"]
    strict = NasBenchEnv(small_index, small_dense_accuracy, strict=True, **SMALL)
    obs, _ = strict.reset(seed=0)
    with pytest.raises(Exception, match="masked"):
        strict.step(int(np.flatnonzero(obs["action_mask"] == 0)[0]))


def test_gymnasium_check_env(small_index, small_dense_accuracy):
    check_env(NasBenchEnv(small_index, small_dense_accuracy, **SMALL), skip_render_check=True)


def test_bad_arguments(small_index, small_dense_accuracy):
    with pytest.raises(ConfigError, match="mode"):
        NasBenchVectorEnv(small_index, small_dense_accuracy, mode="surrogate-ish")
    with pytest.raises(ConfigError, match="shape"):
        accuracy_for_index(small_index, np.zeros(3))
    with pytest.raises(ConfigError, match="max_neighbours"):
        NasBenchVectorEnv(small_index, small_dense_accuracy, max_neighbours=0)


def test_no_shaping_option(small_index, small_dense_accuracy):
    env = NasBenchEnv(small_index, small_dense_accuracy, alpha=None, seed=0)
    obs, info = env.reset(seed=3)
    a = int(np.flatnonzero(obs["action_mask"][1:])[0]) + 1
    _, reward, *_, info2 = env.step(a)
    assert reward == pytest.approx(info2["accuracy"] - info["accuracy"])  # raw difference


def test_vector_info_keeps_initial_cell_and_ordinal(small_index, small_dense_accuracy):
    ids = np.flatnonzero(small_index.degrees() > 0)[100:112]
    env = NasBenchVectorEnv(small_index, small_dense_accuracy, num_envs=4, episode_length=3, seed=0)
    obs, info = env.reset(options={"initial_ids": ids})
    assert info["initial_cell_id"].tolist() == ids[:4].tolist()
    assert info["episode_ordinal"].tolist() == [0, 1, 2, 3]
    ended: dict[int, int] = {}
    for _ in range(3):  # never terminate: every episode ends by truncation at step 3
        obs, _, term, _, info = env.step(last_valid(obs["action_mask"]))
        assert not term.any()
        if "final_obs" in info:
            for o, c in zip(
                info["final_episode_ordinal"], info["final_initial_cell_id"], strict=True
            ):
                ended[int(o)] = int(c)
    assert ended == {k: int(ids[k]) for k in range(4)}  # ordinal k <-> the k-th queued id
    assert info["episode_ordinal"].tolist() == [4, 5, 6, 7]
    assert info["initial_cell_id"].tolist() == ids[4:8].tolist()
    assert np.array_equal(info["report_accuracy"], info["accuracy"])
