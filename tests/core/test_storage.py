"""rachel.core.storage: local atomic writes, and gs:// through the real google-cloud-storage
client talking to gcp-storage-emulator (started here on a free local port)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from rachel.core import storage
from rachel.core.errors import ArtifactError, StorageError


@pytest.fixture
def bucket(gcs_bucket: str) -> str:
    """``gs://<fresh bucket>`` on the emulator (see tests/conftest.py)."""
    return gcs_bucket


# ------------------------------------------------------------------ gs://


def test_bytes_and_json_round_trip(bucket):
    storage.write_bytes(f"{bucket}/a/b.bin", b"\x00\x01payload")
    assert storage.read_bytes(f"{bucket}/a/b.bin") == b"\x00\x01payload"
    storage.write_json(f"{bucket}/m.json", {"acc": 0.9, "n": [1, 2]})
    assert storage.read_json(f"{bucket}/m.json") == {"acc": 0.9, "n": [1, 2]}
    assert storage.exists(f"{bucket}/m.json") and not storage.exists(f"{bucket}/nope.json")


def test_overwrite_replaces_whole_object(bucket):
    storage.write_bytes(f"{bucket}/x", b"long old content")
    storage.write_bytes(f"{bucket}/x", b"new")
    assert storage.read_bytes(f"{bucket}/x") == b"new"


def test_large_object(bucket):
    data = os.urandom(9 * 1024 * 1024)  # above the client's multipart limit: resumable upload
    storage.write_bytes(f"{bucket}/big", data)
    assert storage.read_bytes(f"{bucket}/big") == data


def test_local_copy_of_gcs_object(bucket):
    storage.write_bytes(f"{bucket}/dir/model.keras", b"weights")
    with storage.local_copy(f"{bucket}/dir/model.keras") as path:
        assert path.name == "model.keras" and path.read_bytes() == b"weights"
        held = path
    assert not held.exists()  # the temporary copy is removed


def test_upload_dir_to_gcs(bucket, tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.txt").write_text("A")
    (tmp_path / "sub" / "b.txt").write_text("B")
    storage.upload_dir(tmp_path, f"{bucket}/run")
    assert storage.read_bytes(f"{bucket}/run/a.txt") == b"A"
    assert storage.read_bytes(f"{bucket}/run/sub/b.txt") == b"B"


def test_missing_bucket_is_a_clear_storage_error(bucket):
    with pytest.raises(StorageError, match="bucket gs://no-such-bucket does not exist") as err:
        storage.read_bytes("gs://no-such-bucket/x")
    assert "create it" in err.value.hint
    with pytest.raises(StorageError, match="does not exist"):
        storage.write_bytes("gs://no-such-bucket/x", b"1")


def test_missing_object(bucket):
    with pytest.raises(StorageError, match=f"object {bucket}/nope does not exist"):
        storage.read_bytes(f"{bucket}/nope")
    with pytest.raises(StorageError):
        with storage.local_copy(f"{bucket}/nope"):
            pass


def test_invalid_json_is_an_artifact_error(bucket):
    storage.write_bytes(f"{bucket}/bad.json", b"{not json")
    with pytest.raises(ArtifactError, match="not valid JSON"):
        storage.read_json(f"{bucket}/bad.json")


def test_gcs_uri_helpers():
    assert storage.is_gcs("gs://b/x") and not storage.is_gcs("/tmp/gs://")
    assert storage.split_gcs("gs://b/a/b.txt") == ("b", "a/b.txt")
    assert storage.join("gs://b/run/", "/x/", "y.json") == "gs://b/run/x/y.json"
    with pytest.raises(StorageError, match="malformed GCS URI"):
        storage.split_gcs("gs:///x")


# ------------------------------------------------------------------ local


def test_local_round_trip_creates_parents(tmp_path):
    target = tmp_path / "a" / "b" / "c.json"
    storage.write_json(target, {"x": 1})
    assert storage.read_json(str(target)) == {"x": 1}
    assert json.loads(target.read_text()) == {"x": 1}
    assert target.stat().st_mode & 0o777 == 0o666 & ~storage._UMASK


def test_local_write_failure_leaves_no_partial_file(tmp_path):
    target = tmp_path / "out.bin"
    with pytest.raises(TypeError):  # fails inside the write, after the temp file exists
        storage.write_bytes(target, object())  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


def test_local_write_failure_keeps_previous_content(tmp_path, monkeypatch):
    target = tmp_path / "out.bin"
    storage.write_bytes(target, b"v1")

    def fail(*_a):
        raise OSError("no space left on device")

    monkeypatch.setattr(storage.os, "fsync", fail)
    with pytest.raises(OSError, match="no space"):
        storage.write_bytes(target, b"v2" * 1000)
    assert target.read_bytes() == b"v1"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]


def test_local_missing_file(tmp_path):
    with pytest.raises(StorageError, match="does not exist"):
        storage.read_bytes(tmp_path / "nope")
    with pytest.raises(StorageError, match="does not exist"):
        with storage.local_copy(tmp_path / "nope"):
            pass
    with storage.local_copy(str(tmp_path)) as p:
        assert p == Path(tmp_path)


def test_atomic_dir_success_and_replace(tmp_path):
    final = tmp_path / "model"
    with storage.atomic_dir(final) as tmp:
        (tmp / "v").write_text("1")
        assert not final.exists()
    assert (final / "v").read_text() == "1"
    with storage.atomic_dir(final) as tmp:
        (tmp / "w").write_text("2")
    assert sorted(p.name for p in final.iterdir()) == ["w"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no leftovers


def test_atomic_dir_failure_leaves_nothing(tmp_path):
    final = tmp_path / "model"
    with pytest.raises(RuntimeError):
        with storage.atomic_dir(final) as tmp:
            (tmp / "half").write_text("x")
            raise RuntimeError("training crashed")
    assert list(tmp_path.iterdir()) == []


def test_atomic_dir_failure_keeps_previous_version(tmp_path):
    final = tmp_path / "model"
    with storage.atomic_dir(final) as tmp:
        (tmp / "v").write_text("1")
    with pytest.raises(RuntimeError):
        with storage.atomic_dir(final) as tmp:
            (tmp / "v").write_text("2")
            raise RuntimeError("crash")
    assert (final / "v").read_text() == "1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_upload_dir_local(tmp_path):
    src = tmp_path / "src"
    (src / "d").mkdir(parents=True)
    (src / "d" / "f").write_text("F")
    storage.upload_dir(src, str(tmp_path / "dst"))
    assert (tmp_path / "dst" / "d" / "f").read_text() == "F"
