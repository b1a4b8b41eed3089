"""A bucket on gcp-storage-emulator (in memory, 127.0.0.1, a free port) for the benchmarks,
reached through ``rachel.core.storage`` with the real google-cloud-storage client."""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator


@contextlib.contextmanager
def emulator_bucket(name: str = "bench") -> Iterator[str]:
    """Start the emulator, point the storage layer at it, yield ``gs://<name>``; undo all."""
    from gcp_storage_emulator.server import create_server

    from rachel.core import storage

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    server = create_server("127.0.0.1", port, in_memory=True)
    server.start()
    os.environ["STORAGE_EMULATOR_HOST"] = f"http://127.0.0.1:{port}"
    storage.reset_client()
    try:
        storage._gcs_client().create_bucket(name)
        yield f"gs://{name}"
    finally:
        server.stop()
        os.environ.pop("STORAGE_EMULATOR_HOST", None)
        storage.reset_client()
