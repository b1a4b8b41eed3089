"""CellIndex on a small subset (every cell with <= 5 vertices); the full build is slow."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from rachel.core.errors import NasBenchError
from rachel.core.nasbench.hashing import batch_fingerprint
from rachel.core.nasbench.index import CellIndex
from rachel.core.nasbench.neighbours import neighbours
from rachel.core.nasbench.space import ACCEPTED_REPRESENTATIONS, NasBench101Space, sample_arrays


def test_ids_follow_table_rows(small_index, small_rows, structure_rows):
    hashes = [structure_rows["module_hash"][r] for r in small_rows]
    assert small_index.hashes.tolist() == hashes
    assert len(small_index) == len(small_rows) == 2532
    for i in (0, 17, 2531):
        assert small_index.id_of(hashes[i]) == i
        assert small_index.hash_of(i) == hashes[i]
        assert small_index.cell(i).hash() == hashes[i]
        assert small_index.id_of_cell(small_index.cell(i)) == i
    ids = small_index.ids_of(np.array([hashes[5], "0" * 32, hashes[9]]))
    assert ids.tolist() == [5, -1, 9]
    with pytest.raises(NasBenchError, match="not in the table"):
        small_index.id_of("f" * 32)


def test_encodings_match_space(small_index):
    space = NasBench101Space()
    assert small_index.encodings.dtype == np.uint8
    for i in range(0, len(small_index), 211):
        np.testing.assert_array_equal(
            small_index.encodings[i].astype(np.float32), space.encode(small_index.cell(i))
        )


def test_csr_matches_neighbour_generation(small_index):
    assert small_index.indptr.dtype == np.int32 and small_index.indices.dtype == np.int32
    assert small_index.indptr[0] == 0 and small_index.indptr[-1] == len(small_index.indices)
    # cells with <= 5 vertices have neighbours with 6 vertices: outside this subset, counted
    assert small_index.outside > 0
    for i in range(0, len(small_index), 97):
        nbs = neighbours(small_index.cell(i))
        ids = small_index.ids_of([nb.hash() for nb in nbs])
        expected = np.sort(ids[ids >= 0])
        got = small_index.neighbours(i)
        np.testing.assert_array_equal(got, expected)
        assert i not in got.tolist()


def test_save_load_round_trip(small_index, tmp_path):
    path = tmp_path / "idx.npz"
    small_index.save(path)
    loaded = CellIndex.load(path)
    for name in ("hashes", "codes", "fingerprints", "encodings", "indptr", "indices"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(small_index, name))
    assert loaded.outside == small_index.outside


def test_sample_ids_respects_allowed(small_index):
    rng = np.random.default_rng(0)
    allowed = np.zeros(len(small_index), dtype=bool)
    allowed[::7] = True
    ids = small_index.sample_ids(rng, 50, allowed, vertex_range=(2, 5))
    assert allowed[ids].all() and len(ids) == 50


def test_representation_counts_cover_the_sampler(small_index):
    # the subset holds every cell with <= 5 vertices, so the counts must add up exactly
    nv = small_index.num_vertices
    for v in range(2, 6):
        assert int(small_index.reps[nv == v].astype(int).sum()) == ACCEPTED_REPRESENTATIONS[v]


def test_exact_sampler_matches_rejection_sampler(small_index):
    rng = np.random.default_rng(11)
    n = 20000
    ids = small_index.ids_of_fingerprints(batch_fingerprint(*sample_arrays(rng, n, (3, 4))))
    assert (ids >= 0).all()
    cdf = small_index.sampler_cdf(vertex_range=(3, 4))
    p = np.diff(np.concatenate([[0.0], cdf])) / cdf[-1]
    support = np.flatnonzero(p > 0)
    assert set(np.unique(ids).tolist()) <= set(support.tolist())
    observed = np.bincount(ids, minlength=len(small_index))[support]
    assert stats.chisquare(observed, p[support] * n).pvalue > 1e-3
    exact = small_index.sample_ids(rng, n, vertex_range=(3, 4))
    observed = np.bincount(exact, minlength=len(small_index))[support]
    assert stats.chisquare(observed, p[support] * n).pvalue > 1e-3


@pytest.mark.slow
def test_full_index(parquet_path, tmp_path):
    index = CellIndex.load_or_build(parquet_path, cache=tmp_path / "full.npz")
    assert len(index) == 423624
    assert index.outside == 0
    deg = index.degrees()
    assert 15 < deg.mean() < 40  # the paper: "around 25 neighbours"
    for v in range(2, 8):
        assert (
            int(index.reps[index.num_vertices == v].astype(int).sum())
            == (ACCEPTED_REPRESENTATIONS[v])
        )
    rng = np.random.default_rng(0)
    for i in rng.choice(len(index), size=300, replace=False).tolist():
        ids = index.ids_of([nb.hash() for nb in neighbours(index.cell(i))])
        assert (ids >= 0).all()  # md5-deduplicated neighbours are all in the table
        np.testing.assert_array_equal(index.neighbours(i), np.sort(ids))
    again = CellIndex.load_or_build(parquet_path, cache=tmp_path / "full.npz")
    np.testing.assert_array_equal(again.indices, index.indices)


def test_a_missing_default_table_says_where_it_looked_and_how_to_point_elsewhere(
    tmp_path, monkeypatch
):
    from rachel.core.errors import NasBenchError
    from rachel.core.nasbench.index import table_or_default

    monkeypatch.setenv("RACHEL_NASBENCH101_TABLE", str(tmp_path / "absent.parquet"))
    with pytest.raises(NasBenchError, match="absent.parquet") as err:
        table_or_default(None)
    assert "--table" in str(err.value) and "RACHEL_NASBENCH101_TABLE" in str(err.value)
    assert table_or_default("gs://b/t.parquet") == "gs://b/t.parquet"  # given: not checked here
