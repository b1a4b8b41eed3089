"""One search at a time per output: a lock beside the output folder or ``gs://`` prefix.

Two searches given the same ``--output`` (a weekly schedule whose last run is still going,
a retried CI job) would both see a new or resumable run and interleave their steps.  The
second one is refused with a :class:`~rachel.core.errors.ConfigError` (exit 2) naming the
holder; nothing of the output is touched.

* **Local** (``<parent>/.<name>.lock``): an exclusive, non-blocking ``flock`` held for the
  search's lifetime, the file removed when it ends.  The kernel drops the lock when the
  process ends, killed or not, so a killed run's leftover file locks nothing: the next
  run takes it and resumes.  (File systems that ignore ``flock``, as some NFS mounts do,
  are not protected.)
* **gs://** (``<prefix>.lock``, an object beside the prefix): a lease, created and renewed
  with generation preconditions (:func:`rachel.core.storage.write_if_unchanged`), so that
  two machines cannot both hold it.  A background thread renews it every
  :data:`LEASE_SECONDS` / 3; a lease not renewed for :data:`LEASE_SECONDS` (its holder was
  killed) is taken over, and a holder that finds its lease taken over stops renewing it.
  Released (deleted, if still its own) when the search ends.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rachel.core import storage
from rachel.core.errors import ConfigError, ConflictError

LEASE_SECONDS = 300.0


def lock_path(output: str | Path) -> str:
    """Where the lock of ``output`` lives: beside it, so it is no part of the run."""
    uri = str(output).rstrip("/")
    if storage.is_gcs(uri):
        return f"{uri}.lock"
    path = Path(uri).resolve()
    return str(path.parent / f".{path.name}.lock")


@contextmanager
def output_lock(output: str | Path, *, lease_seconds: float = LEASE_SECONDS) -> Iterator[None]:
    """Hold the lock of ``output`` for the ``with`` block, or raise ConfigError if another
    search holds it."""
    path = lock_path(output)
    if storage.is_gcs(path):
        lease = _Lease(path, str(output), lease_seconds)
        lease.acquire()
        try:
            yield
        finally:
            lease.release()
        return
    with _flock(path, str(output)):
        yield


@contextmanager
def _flock(path: str, output: str) -> Iterator[None]:
    import fcntl

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    while True:
        fh = open(path, "a+")  # noqa: SIM115 - held open for the lock's lifetime
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as err:
            fh.seek(0)
            holder = _parse(fh.read())
            fh.close()
            raise _in_use(output, holder) from err
        try:  # the holder before us may have removed the file between our open and lock
            same = os.stat(path).st_ino == os.fstat(fh.fileno()).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        fh.close()
    try:
        fh.seek(0)
        fh.truncate()
        fh.write(json.dumps(_holder()))
        fh.flush()
        yield
    finally:
        os.unlink(path)  # before the unlock: a waiting opener then finds no file, retries
        fh.close()


def _holder() -> dict[str, Any]:
    return {"host": socket.gethostname(), "pid": os.getpid(), "since": round(time.time(), 1)}


def _parse(text: str | bytes | None) -> dict[str, Any]:
    try:
        data = json.loads(text or "{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _in_use(output: str, holder: dict[str, Any]) -> ConfigError:
    since = holder.get("since")
    when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(since)) if since else "?"
    return ConfigError(
        f"output {output} is in use by another search (host {holder.get('host', '?')}, "
        f"pid {holder.get('pid', '?')}, since {when})",
        "wait for it to finish (a run given the same --output then resumes or returns it), "
        "or choose another --output",
    )


class _Lease:
    """The ``gs://`` lease: one small JSON object, replaced only by generation match."""

    def __init__(self, uri: str, output: str, seconds: float) -> None:
        self.uri, self.output, self.seconds = uri, output, seconds
        self.owner = uuid.uuid4().hex
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None

    def _record(self) -> bytes:
        return json.dumps(
            {**_holder(), "owner": self.owner, "expires": time.time() + self.seconds}
        ).encode()

    def acquire(self) -> None:
        data, token = storage.read_versioned(self.uri)
        if data is not None:
            held = _parse(data)
            if float(held.get("expires", 0.0)) > time.time():
                raise _in_use(self.output, held)
        try:  # absent (token None) or expired: only one of two racing takers succeeds
            storage.write_if_unchanged(self.uri, self._record(), token)
        except ConflictError as err:
            raise _in_use(self.output, _parse(storage.read_versioned(self.uri)[0])) from err
        self.thread = threading.Thread(target=self._renew, name="rachel-lease", daemon=True)
        self.thread.start()

    def _renew(self) -> None:
        while not self.stop.wait(self.seconds / 3.0):
            try:
                data, token = storage.read_versioned(self.uri)
                if data is None or _parse(data).get("owner") != self.owner:
                    return  # taken over after this holder stalled past its expiry: let go
                storage.write_if_unchanged(self.uri, self._record(), token)
            except Exception:  # noqa: BLE001 - replaced in between, or unreachable: retried
                continue

    def release(self) -> None:
        self.stop.set()
        if self.thread is not None:
            self.thread.join()
        data, token = storage.read_versioned(self.uri)
        if data is not None and _parse(data).get("owner") == self.owner:
            storage.delete(self.uri)
