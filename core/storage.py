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
            from google.auth import exceptions as auth_exc

            try:
                _client = storage.Client()
            except auth_exc.DefaultCredentialsError as err:
                raise StorageError(
                    "no Google Cloud credentials found for gs:// access",
                    "on GKE bind the pod's service account with Workload Identity; elsewhere run "
                    "'gcloud auth application-default login' or set "
                    "GOOGLE_APPLICATION_CREDENTIALS to a key file",
                ) from err
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
        with _gcs_errors(f"gs://{bucket_name}", "reach bucket"):
            found = bucket.exists()
    except StorageError as err:
        if not isinstance(err.__cause__, gexc.Forbidden):
            raise
        # Object-level roles (e.g. roles/storage.objectViewer) lack storage.buckets.get:
        # skip the bucket check and let the object operation report its own error.
        found = True
    if not found:
        raise StorageError(
            f"bucket gs://{bucket_name} does not exist or is not visible",
            "create it (gcloud storage buckets create) or fix the URI / credentials",
        )
    return bucket.blob(blob_name)


@contextlib.contextmanager
def _gcs_errors(uri: str, action: str) -> Iterator[None]:
    """Turn google-cloud errors (permission, not found, server, credentials, network) into
    StorageError: one line naming the object and the fix instead of a client traceback."""
    from google.api_core import exceptions as gexc
    from google.auth import exceptions as auth_exc
    from requests import exceptions as http_exc

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
    except auth_exc.GoogleAuthError as err:
        raise StorageError(
            f"cannot {action} {uri}: the credentials were refused ({err})",
            "refresh them (gcloud auth application-default login) or check the Workload "
            "Identity binding",
        ) from err
    except http_exc.RequestException as err:
        raise StorageError(
            f"cannot {action} {uri}: storage endpoint unreachable ({type(err).__name__})",
            "check the network (or STORAGE_EMULATOR_HOST when using an emulator) and retry",
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


def upload_file(local: str | os.PathLike[str], uri: str) -> None:
    """Copy one local file to ``uri`` (streamed from disk; atomic for the reader)."""
    if not is_gcs(uri):
        with atomic_file(uri) as fh, open(local, "rb") as src:
            shutil.copyfileobj(src, fh, 1 << 20)
        return
    blob = _blob(uri)
    with _gcs_errors(uri, "write"):
        blob.upload_from_filename(str(local))


def download_file(uri: str, local: str | os.PathLike[str]) -> None:
    """Copy one object to a local file (streamed to disk; the file appears complete or not at
    all)."""
    if not is_gcs(uri):
        upload_file(uri, str(local))  # a local copy is the same atomic streamed copy
        return
    blob = _blob(uri)
    local = Path(local)
    local.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{local.name}.", suffix=".tmp", dir=local.parent)
    os.close(fd)
    try:
        with _gcs_errors(uri, "read"):
            blob.download_to_filename(tmp)
        os.replace(tmp, local)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def list_files(prefix: str | os.PathLike[str]) -> list[str]:
    """The files under a folder or ``gs://`` prefix, as sorted paths relative to it
    (temporary files of an unfinished atomic write are not listed)."""
    prefix = str(prefix)
    if is_gcs(prefix):
        bucket_name, path = split_gcs(prefix.rstrip("/") + "/")
        _blob(prefix)  # a missing bucket is a StorageError, not an empty listing
        with _gcs_errors(prefix, "list"):
            names = [b.name for b in _gcs_client().list_blobs(bucket_name, prefix=path)]
        return sorted(n[len(path) :] for n in names if not n.endswith("/"))
    root = Path(prefix)
    if not root.is_dir():
        return []
    return sorted(
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and not p.name.endswith(".tmp")
    )


def delete(uri: str | os.PathLike[str]) -> None:
    """Remove one file or object (missing: nothing to do)."""
    uri = str(uri)
    if not is_gcs(uri):
        if Path(uri).is_file() or Path(uri).is_symlink():
            Path(uri).unlink()
        return
    from google.api_core import exceptions as gexc

    with _gcs_errors(uri, "delete"), contextlib.suppress(gexc.NotFound):
        _blob(uri).delete()


def delete_tree(prefix: str | os.PathLike[str]) -> None:
    """Remove a folder or every object under a ``gs://`` prefix (missing: nothing to do)."""
    prefix = str(prefix)
    if not is_gcs(prefix):
        if Path(prefix).is_dir():
            shutil.rmtree(prefix)
        return
    for name in list_files(prefix):
        uri = join(prefix, name)
        with _gcs_errors(uri, "delete"):
            _blob(uri).delete()


def download_dir(uri: str, local: str | os.PathLike[str]) -> None:
    """Copy every object under ``uri`` into the local folder ``local`` (built atomically)."""
    with atomic_dir(local) as tmp:
        for name in list_files(uri):
            download_file(join(uri, name), tmp / name)


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
        download_file(uri, local)
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
            upload_file(file, join(uri, file.relative_to(local).as_posix()))
        return
    with atomic_dir(uri) as tmp:
        shutil.copytree(local, tmp, dirs_exist_ok=True)


# ------------------------------------------------- conditional replace of one small object
# (the champion registry's pointer: rachel.core.registry)


def read_versioned(uri: str | os.PathLike[str]) -> tuple[bytes | None, int | str | None]:
    """The object's bytes and a token naming this version of it; ``(None, None)`` if absent.

    The token is the GCS object *generation* (an int), or locally the sha256 of the file's
    bytes.  Pass it to :func:`write_if_unchanged` to replace the object only if nobody else
    has replaced it since.
    """
    import hashlib

    uri = str(uri)
    if not is_gcs(uri):
        path = Path(uri)
        if not path.is_file():
            return None, None
        data = path.read_bytes()
        return data, hashlib.sha256(data).hexdigest()
    from google.api_core import exceptions as gexc

    blob = _blob(uri)
    with _gcs_errors(uri, "read"):
        for _ in range(3):
            try:
                blob.reload()
            except gexc.NotFound:
                return None, None
            generation = int(blob.generation)
            try:  # the generation just read, or a 412 if it was replaced in between
                return bytes(blob.download_as_bytes(if_generation_match=generation)), generation
            except (gexc.PreconditionFailed, gexc.NotFound):
                continue
    raise StorageError(f"{uri} kept changing while it was read", "retry the operation")


def write_if_unchanged(uri: str | os.PathLike[str], data: bytes, token: int | str | None) -> None:
    """Write ``data`` to ``uri`` only if it still is the version ``token`` names (from
    :func:`read_versioned`; ``None`` = only if it does not exist); otherwise raise
    :class:`~rachel.core.errors.ConflictError` and leave the object as it is.

    On GCS this is one upload with ``if_generation_match`` (0 for "must not exist"): the
    server decides, so two writers on two machines cannot both succeed.  (gcp-storage-emulator
    accepts the precondition but does not enforce it.)  Locally the compare and the atomic
    rename run under an exclusive ``flock`` on ``.<name>.lock`` beside the file: writers on
    one machine are serialised (file systems that ignore ``flock``, as some NFS mounts do,
    are not protected).  Readers never need the lock: the rename is atomic.
    """
    import hashlib

    from rachel.core.errors import ConflictError

    uri = str(uri)
    conflict = ConflictError(
        f"{uri} was replaced by another writer after it was read",
        "read it again and redo the decision (a concurrent run published first)",
    )
    if is_gcs(uri):
        from google.api_core import exceptions as gexc

        blob = _blob(uri)
        with _gcs_errors(uri, "write"):
            try:
                blob.upload_from_string(
                    data, if_generation_match=0 if token is None else int(token)
                )
            except gexc.PreconditionFailed as err:
                raise conflict from err
        return
    import fcntl

    path = Path(uri)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.parent / f".{path.name}.lock", "a+b") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            current = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None
            if current != token:
                raise conflict
            with atomic_file(path) as fh:
                fh.write(data)
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)
