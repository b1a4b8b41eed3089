"""One search at a time per output: the local flock and the gs:// lease."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from rachel.core import storage
from rachel.core.errors import ConfigError
from rachel.core.output_lock import lock_path, output_lock


def test_a_second_holder_of_a_local_output_is_refused_and_the_lock_goes_with_the_first(tmp_path):
    out = tmp_path / "run"
    with output_lock(out):
        held = json.loads(open(lock_path(out)).read())
        assert held["pid"] == os.getpid()
        with pytest.raises(ConfigError, match=rf"in use by another search .*pid {os.getpid()}"):
            with output_lock(out):
                pass
        with output_lock(tmp_path / "other"):  # another output is not affected
            pass
    assert list(tmp_path.iterdir()) == []  # no lock file left, the output never created
    with output_lock(out):  # free again
        pass


def test_a_killed_holder_leaves_no_lock_that_holds(tmp_path):
    out = tmp_path / "run"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from rachel.core.output_lock import output_lock\n"
            "with output_lock(sys.argv[1]):\n"
            "    print('held', flush=True)\n"
            "    time.sleep(60)\n",
            str(out),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(ConfigError, match=f"pid {holder.pid}"):
            with output_lock(out):
                pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert os.path.exists(lock_path(out))  # the killed holder's file is left behind ...
    with output_lock(out):  # ... and locks nothing
        pass


def test_a_search_is_refused_while_another_holds_its_output(fashion_files, tmp_path):
    from rachel.core.config import budget_config
    from rachel.core.search import run_search

    cfg = budget_config("smoke", data_dir=str(fashion_files), time_budget_seconds=None)
    with output_lock(tmp_path / "run"):
        with pytest.raises(ConfigError, match="in use by another search"):
            run_search(cfg, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_a_bucket_lease_is_exclusive_until_it_expires(gcs_bucket):
    out = f"{gcs_bucket}/runs/weekly"
    assert lock_path(out) == f"{gcs_bucket}/runs/weekly.lock"
    with output_lock(out):
        held = json.loads(storage.read_bytes(lock_path(out)))
        assert held["expires"] > time.time() + 200
        with pytest.raises(ConfigError, match="in use by another search"):
            with output_lock(out):
                pass
    assert not storage.exists(lock_path(out))  # released

    # a holder killed without releasing: its lease expires, and is then taken over
    stale = {"host": "gone", "pid": 1, "since": 0.0, "owner": "x", "expires": time.time() - 1}
    storage.write_bytes(lock_path(out), json.dumps(stale).encode())
    with output_lock(out):
        assert json.loads(storage.read_bytes(lock_path(out)))["owner"] != "x"


def test_a_bucket_lease_is_renewed_while_held_and_release_leaves_a_takers_lease(gcs_bucket):
    out = f"{gcs_bucket}/runs/weekly"
    with output_lock(out, lease_seconds=0.6):
        first = json.loads(storage.read_bytes(lock_path(out)))["expires"]
        time.sleep(1.0)  # past the first expiry: renewed every 0.2 s
        renewed = json.loads(storage.read_bytes(lock_path(out)))
        assert renewed["expires"] > first and renewed["expires"] > time.time()
        # another machine took the lease over (say this one stalled past its expiry)
        taker = {**renewed, "owner": "taker", "expires": time.time() + 300}
        storage.write_bytes(lock_path(out), json.dumps(taker).encode())
        time.sleep(0.5)  # two renewal ticks
    # the renewals after the takeover, and the release, leave the taker's lease alone
    assert json.loads(storage.read_bytes(lock_path(out)))["owner"] == "taker"
