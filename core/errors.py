"""The product's errors.

Exit codes (the CLI's contract with CI/CD jobs): 0 success, 1 unexpected internal error,
2 invalid arguments / configuration / data, 3 a pipeline run that failed, 4 an
unreachable Kubeflow host, 5 an artifact store that cannot be used, 6 a new model that the
promotion gate did not promote (only with ``rachel search --fail-if-not-promoted``), 7 a
transient failure (out of memory, a storage timeout): run the same command again to resume.

Every error a user can cause carries the problem *and* the fix, so that the CLI can
print one clear line and exit non-zero instead of a traceback.  Code raises the most
specific subclass; callers that only want "a user error" catch :class:`RachelError`.
"""

from __future__ import annotations


class RachelError(Exception):
    """Base class: a problem the user can fix.  ``hint`` says how."""

    exit_code = 2

    def __init__(self, problem: str, hint: str | None = None) -> None:
        self.problem = problem
        self.hint = hint
        super().__init__(problem if not hint else f"{problem} (fix: {hint})")


class ConfigError(RachelError):
    """A bad configuration or command-line argument, caught before any training starts."""


class DataError(RachelError):
    """A dataset that is missing, malformed or unusable (shapes, dtypes, NaNs, labels)."""


class StorageError(RachelError):
    """An artifact store that cannot be read or written (missing bucket, no permission)."""

    exit_code = 5


class ArtifactError(RachelError):
    """An artifact that is missing, truncated or of the wrong kind/schema."""


class NasBenchError(RachelError):
    """A NAS-Bench problem: a malformed cell, a cell outside the space, a bad table."""


class OffSpaceError(NasBenchError):
    """A NAS-Bench query for a cell that is not in the search space."""


class MissingMetricsError(NasBenchError):
    """A queried cell is in the space but its metrics are not in the table (tabular mode)."""


class CandidateFailedError(RachelError):
    """One candidate could not be built or trained; the search records it and goes on."""

    exit_code = 1


class PipelineRunError(RachelError):
    """A pipeline run finished in a failed state."""

    exit_code = 3


class HostUnreachableError(RachelError):
    """A Kubeflow Pipelines endpoint that cannot be reached."""

    exit_code = 4


class ConflictError(StorageError):
    """A conditional write lost to a concurrent writer (the object changed since it was read)."""


class RegistryError(RachelError):
    """A champion registry that cannot be used as asked: a changed test split, no champion
    to warm-start from, an incompatible controller checkpoint."""


class NotPromotedError(RachelError):
    """The promotion gate kept the champion and the run asked to fail in that case."""

    exit_code = 6


class TransientError(RachelError):
    """A failure that is not the candidate's: out of memory on a shared node, a storage or
    network timeout, a worker process killed.  Retrying the same step can succeed (KFP's
    retry policy does; ``rachel search`` resumes when run again), so it is never recorded
    as a failed candidate."""

    exit_code = 7
