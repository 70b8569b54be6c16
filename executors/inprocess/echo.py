"""The ``echo`` handler: the OGC API - Processes test process (inputs back as outputs)."""

from __future__ import annotations

import time
from typing import Any

from executors.base import DeadlineExceeded, ExecutionContext

_STEP_SECONDS = 0.05
_REPORT_SECONDS = 0.5


def echo(inputs: dict[str, Any], ctx: ExecutionContext) -> dict[str, Any]:
    """Every input except ``pause`` returned under the same name, after ``pause`` seconds."""
    pause = float(inputs.get("pause") or 0.0)
    started = time.monotonic()
    last_report = started
    while (elapsed := time.monotonic() - started) < pause:
        ctx.check_cancelled()
        now = time.monotonic()
        if ctx.deadline is not None and now > ctx.deadline:
            raise DeadlineExceeded(f"echo paused past its maximum runtime ({pause:g} s asked)")
        if now - last_report >= _REPORT_SECONDS:
            ctx.progress(min(99, int(100 * elapsed / pause)), f"Paused {elapsed:.1f} of {pause:g} s")
            last_report = now
        time.sleep(min(_STEP_SECONDS, pause - elapsed))
    ctx.check_cancelled()
    return {name: value for name, value in inputs.items() if name != "pause"}
