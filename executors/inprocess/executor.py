"""The in-process tier: shapely 2 / GEOS operations in the worker process."""

from __future__ import annotations

from typing import Any, ClassVar

from pyproj.exceptions import CRSError, ProjError
from shapely.errors import GEOSException

from executors.base import ExecutionContext, Executor, InvalidInput, TierUnavailable
from executors.inprocess.operations import HANDLERS


class InProcessExecutor(Executor):
    """Runs vectorized shapely operations inline; cancellation is checked between chunks."""

    tier: ClassVar[str] = "inprocess"
    needs_database: ClassVar[bool] = False
    isolated: ClassVar[bool] = False
    supports_cancel: ClassVar[bool] = True

    def supports(self, handler: str) -> bool:
        return handler in HANDLERS

    def execute(
        self, handler: str, inputs: dict[str, Any], ctx: ExecutionContext
    ) -> dict[str, Any]:
        operation = HANDLERS.get(handler)
        if operation is None:
            raise TierUnavailable(f"the inprocess tier has no handler '{handler}'")
        ctx.check_cancelled()
        try:
            return operation(inputs, ctx)
        except GEOSException as exc:
            raise InvalidInput(
                f"{handler}: geometry operation failed ({exc}); the input may be invalid, "
                "run make_valid first",
                code="geometry-operation-failed",
            ) from exc
        except (CRSError, ProjError) as exc:
            raise InvalidInput(f"{handler}: spatial reference error ({exc})") from exc
