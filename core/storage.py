"""Artifact storage: local folders by default, Google Cloud Storage for ``gs://`` URIs.

Every write is atomic: a reader sees either the previous object or the complete new
one, never a partial file.  Locally that is a temporary file in the same folder plus
``os.replace``; on GCS a single-object upload is already atomic.

``gs://`` access uses the real ``google-cloud-storage`` client.  Setting
``STORAGE_EMULATOR_HOST`` (as ``gcp-storage-emulator`` and ``fake-gcs-server`` expect)
points the client at an emulator; credentials then are not needed.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from rachel.core.errors import StorageError

GCS_SCHEME = "gs://"


def is_gcs(uri: str | os.PathLike[str]) -> bool:
    return str(uri).startswith(GCS_SCHEME)


def split_gcs(uri: str) -> tuple[str, str]:
    """``gs://bucket/a/b`` → ``("bucket", "a/b")``."""
    rest = uri[len(GCS_SCHEME) :]
    bucket, _, blob = rest.partition("/")
    if not bucket:
        raise StorageError(f"malformed GCS URI {uri!r}", "write it as gs://BUCKET/PATH")
    return bucket, blob


def join(base: str | os.PathLike[str], *parts: str) -> str:
    """Join path parts under a local folder or a ``gs://`` prefix."""
    base = str(base)
    if is_gcs(base):
        return "/".join([base.rstrip("/"), *(p.strip("/") for p in parts)])
    return str(Path(base, *parts))


_client: Any = None


def _gcs_client() -> Any:
    global _client
    if _client is None:
        from google.cloud import storage  # heavy: imported only for gs:// URIs

        if os.environ.get("STORAGE_EMULATOR_HOST"):
            from google.auth.credentials import AnonymousCredentials

            _client = storage.Client(
                project=os.environ.get("GOOGLE_CLOUD_PROJECT", "local"),
                credentials=AnonymousCredentials(),
            )
        else:
            _client = storage.Client()
    return _client


def _read_umask() -> int:
    mask = os.umask(0)  # the only portable way to read it; done once, at import
    os.umask(mask)
    return mask


_UMASK = _read_umask()


def _umask() -> int:
    return _UMASK


def reset_client() -> None:
    """Forget the cached GCS client (tests that switch emulators call this)."""
    global _client
    _client = None


def _blob(uri: str) -> Any:
    from google.api_core import exceptions as gexc

    bucket_name, blob_name = split_gcs(uri)
    client = _gcs_client()
    bucket = client.bucket(bucket_name)
    try:
        found = bucket.exists()
    except gexc.Forbidden:  # pragma: no cover - needs real IAM
        # Object-level roles (e.g. roles/storage.objectViewer) lack storage.buckets.get:
        # skip the bucket check and let the object operation report its own error.
        found = True
    except gexc.GoogleAPIError as err:  # pragma: no cover - depends on the server
        raise StorageError(
            f"cannot reach bucket gs://{bucket_name}: {err}", "check credentials"
        ) from err
    if not found:
        raise StorageError(
            f"bucket gs://{bucket_name} does not exist or is not visible",
            "create it (gcloud storage buckets create) or fix the URI / credentials",
        )
    return bucket.blob(blob_name)


@contextlib.contextmanager
def _gcs_errors(uri: str, action: str) -> Iterator[None]:
    """Turn google-cloud errors (permission, not found, server) into StorageError."""
    from google.api_core import exceptions as gexc

    try:
        yield
    except gexc.NotFound as err:
        raise StorageError(
            f"object {uri} does not exist", "check the path or upload it first"
        ) from err
    except gexc.GoogleAPIError as err:
        raise StorageError(
            f"cannot {action} {uri}: {err}", "check credentials and permissions"
        ) from err


def exists(uri: str | os.PathLike[str]) -> bool:
    uri = str(uri)
    if is_gcs(uri):
        blob = _blob(uri)
        with _gcs_errors(uri, "check"):
            return bool(blob.exists())
    return Path(uri).exists()


def read_bytes(uri: str | os.PathLike[str]) -> bytes:
    uri = str(uri)
    if is_gcs(uri):
        blob = _blob(uri)
        with _gcs_errors(uri, "read"):
            return bytes(blob.download_as_bytes())
    path = Path(uri)
    if not path.is_file():
        raise StorageError(f"file {uri} does not exist", "check the path")
    return path.read_bytes()


def write_bytes(uri: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` atomically to a local path or a ``gs://`` object."""
    uri = str(uri)
    if is_gcs(uri):
        blob = _blob(uri)
        with _gcs_errors(uri, "write"):
            blob.upload_from_string(data)
        return
    with atomic_file(uri) as fh:
        fh.write(data)


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """Stream into a temporary file beside local ``path``; rename it into place on success.

    A failure (an exception in the ``with`` body) leaves no file at ``path`` and no
    temporary file behind.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp creates the file 0600; give it the mode a plain open() would (0666 & ~umask)
        # so that artifacts stay readable by other users/containers sharing the volume.
        os.chmod(tmp, 0o666 & ~_umask())
        with os.fdopen(fd, "wb", buffering=1 << 20) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def read_json(uri: str | os.PathLike[str]) -> Any:
    try:
        return json.loads(read_bytes(uri))
    except json.JSONDecodeError as err:
        from rachel.core.errors import ArtifactError

        raise ArtifactError(
            f"{uri} is not valid JSON ({err})", "re-run the step that writes it"
        ) from err


def write_json(uri: str | os.PathLike[str], obj: Any) -> None:
    write_bytes(uri, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


@contextlib.contextmanager
def local_copy(uri: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a local path holding the object's bytes (the path itself for local URIs)."""
    uri = str(uri)
    if not is_gcs(uri):
        if not Path(uri).exists():
            raise StorageError(f"{uri} does not exist", "check the path")
        yield Path(uri)
        return
    with tempfile.TemporaryDirectory(prefix="rachel-gcs-") as tmp:
        local = Path(tmp, Path(split_gcs(uri)[1]).name or "object")
        local.write_bytes(read_bytes(uri))
        yield local


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Build a local directory under a temporary name and rename it into place on success.

    A failure leaves no directory at ``path`` (and removes the temporary one), so a
    later step never reads a half-written artifact.  An existing ``path`` is replaced.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
    os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes it 0700; use a plain mkdir's mode
    try:
        yield tmp
        if final.exists():
            backup = final.with_name(f".{final.name}.old")
            shutil.rmtree(backup, ignore_errors=True)
            os.replace(final, backup)
            try:
                os.replace(tmp, final)
            except BaseException:
                os.replace(backup, final)  # put the previous version back
                raise
            shutil.rmtree(backup, ignore_errors=True)
        else:
            os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def upload_dir(local: str | os.PathLike[str], uri: str) -> None:
    """Copy a local directory tree to ``uri`` (a local folder, atomically, or a gs:// prefix)."""
    local = Path(local)
    if is_gcs(uri):
        for file in sorted(p for p in local.rglob("*") if p.is_file()):
            write_bytes(join(uri, file.relative_to(local).as_posix()), file.read_bytes())
        return
    with atomic_dir(uri) as tmp:
        shutil.copytree(local, tmp, dirs_exist_ok=True)
