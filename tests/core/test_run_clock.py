"""The run's start as the pipeline's tasks read it (rachel.core.run_clock)."""

import subprocess
import sys
import time

import pytest

from rachel.core.run_clock import process_age, run_start


def test_started_at_wins_over_the_jobs_creation_time():
    assert run_start(1234.5, "2026-12-01T15:00:00Z") == 1234.5


@pytest.mark.parametrize(
    "text",
    ["2026-12-01T15:00:00Z", "2026-12-01T15:00:00+00:00", "2026-12-01T15:00:00"],
)
def test_the_jobs_creation_time_is_read_as_utc(text):
    assert run_start(0.0, text) == 1796137200.0


def test_a_creation_time_in_nanoseconds_is_read():
    assert run_start(0.0, "2026-12-01T15:00:00.123456789Z") == pytest.approx(1796137200.123456)


@pytest.mark.parametrize("text", ["", "{{$.pipeline_job_create_time_utc}}", "yesterday"])
def test_an_unknown_start_is_none(text):
    assert run_start(0.0, text) is None


def test_process_age_counts_from_the_process_start():
    code = (
        "import time; time.sleep(1.5)\n"
        "from rachel.core.run_clock import process_age\n"
        "print(process_age())"
    )
    started = time.time()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    wall = time.time() - started
    age = float(out.stdout)
    assert 1.0 <= age <= wall + 1.0  # /proc's boot time is whole seconds
    assert process_age() > 0.0
