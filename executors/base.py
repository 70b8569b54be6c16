"""The executor contract: a base class with capability flags, typed errors, the context."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar


class ExecutorError(Exception):
    """An error raised by an executor; ``code`` is a stable machine name."""

    code = "executor-error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code


class TierUnavailable(ExecutorError):
    """This tier cannot serve the request (runtime absent, function missing): try the next."""

    code = "tier-unavailable"


class CapacityRejected(ExecutorError):
    """This tier is out of capacity (statement timeout, pool exhausted): try the next."""

    code = "capacity-rejected"


class InvalidInput(ExecutorError):
    """The inputs are wrong in a way only the executor could see (e.g. invalid geometry)."""

    code = "invalid-input"


class Cancelled(ExecutorError):
    """The run was cancelled while the executor worked."""

    code = "cancelled"


class DeadlineExceeded(ExecutorError):
    """The run exceeded its maximum runtime."""

    code = "timed-out"


class Detached(ExecutorError):
    """The work continues outside this process (an AWS Batch job): the run stays running and
    is finished later from ``external`` ({"runner", "job_id", ...}, JSON) by the control
    plane's completion path (the executor's ``resume``)."""

    code = "detached"

    def __init__(self, message: str, *, external: Mapping[str, Any]) -> None:
        super().__init__(message)
        self.external = dict(external)


def _ignore_progress(percent: int, message: str | None = None) -> None:
    """The default progress sink of a context built without one: reports are dropped."""


def _ignore_attachment(name: str, data: bytes, media_type: str) -> None:
    """The default attachment sink of a context built without one: files are dropped."""


@dataclass
class ExecutionContext:
    """What an executor gets besides its inputs. Knows nothing about HTTP or tenants."""

    run_id: str
    process_id: str
    handler: str
    limits: Mapping[str, Any] = field(default_factory=dict)
    out_srid: int | None = None
    process_srid: int | None = None
    progress: Callable[[int, str | None], None] = _ignore_progress
    message: Callable[[str, str], None] = lambda level, text: None
    is_cancelled: Callable[[], bool] = lambda: False
    cancel_event: threading.Event = field(default_factory=threading.Event)
    deadline: float | None = None  # time.monotonic() value
    # W3C traceparent of this execution's span: hand it on to tasks started for the run
    # (the batch tier's environment), so their logs join the run's trace.
    trace_parent: str | None = None
    # Keep a file with the run (a task's stdout/stderr): the control plane stores it as an
    # artifact of the run with the result TTL; executors know nothing of artifacts.
    attach: Callable[[str, bytes, str], None] = _ignore_attachment

    def check_cancelled(self) -> None:
        """Raise Cancelled if the run was cancelled; executors call it between chunks."""
        if self.cancel_event.is_set() or self.is_cancelled():
            self.cancel_event.set()
            raise Cancelled("the run was cancelled")


class Executor:
    """Base class of tier executors. Subclasses set the flags and implement ``execute``."""

    tier: ClassVar[str]
    needs_database: ClassVar[bool] = False
    isolated: ClassVar[bool] = False
    supports_cancel: ClassVar[bool] = True
    max_runtime_seconds: ClassVar[float | None] = None

    def is_available(self) -> bool:
        """Whether the tier's runtime is present at all."""
        return True

    def supports(self, handler: str) -> bool:
        """Whether this tier implements the named handler."""
        raise NotImplementedError

    def execute(self, handler: str, inputs: dict[str, Any], ctx: ExecutionContext) -> dict[str, Any]:
        """Run ``handler`` on validated internal ``inputs``; return outputs by name."""
        raise NotImplementedError
