"""When a pipeline run started, and how long this task's process has been alive.

A time budget counts from the start of the whole run.  ``rachel search`` knows it; a
pipeline's tasks do not (each is a fresh process, maybe on another node), and counting from
the first candidate's start missed the split and generation tasks and each task's
start-up: ``rachel run`` on the smoke preset took 166 s against its 120 s budget, with
about 5-8 s of kfp.local start-up per task (bench/pipeline_overhead.py).  So the tasks
that decide on time take the run's start as a parameter: the epoch seconds ``rachel run``
passes, else the job's creation time that a KFP backend substitutes for
``dsl.PIPELINE_JOB_CREATE_TIME_UTC_PLACEHOLDER``.  Pure Python.
"""

from __future__ import annotations

import os
import re
import time
from datetime import datetime, timezone


def run_start(started_at: float = 0.0, job_created: str = "") -> float | None:
    """The run's start in epoch seconds: ``started_at`` when set (> 0), else ``job_created``
    (an ISO-8601 time such as ``2026-12-01T15:00:00Z``), else None (unknown: a runner that
    left the placeholder unresolved, e.g. ``{{$.pipeline_job_create_time_utc}}``)."""
    if started_at and started_at > 0:
        return float(started_at)
    text = (job_created or "").strip()
    if not text or text.startswith("{{"):
        return None
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)  # nanoseconds: datetime holds microseconds
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:  # KFP writes UTC
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def process_age() -> float:
    """Seconds since this process started (interpreter start-up and imports included);
    0.0 where ``/proc`` cannot tell (not Linux)."""
    try:
        with open("/proc/self/stat") as fh:
            # the command name (field 2) may hold spaces: split after its closing ')'
            fields = fh.read().rsplit(")", 1)[1].split()
        start_ticks = int(fields[19])  # field 22 of stat(5): starttime, in clock ticks
        with open("/proc/stat") as fh:
            boot = next(int(line.split()[1]) for line in fh if line.startswith("btime"))
    except (OSError, ValueError, IndexError, StopIteration):
        return 0.0
    started = boot + start_ticks / os.sysconf("SC_CLK_TCK")
    return max(0.0, time.time() - started)
