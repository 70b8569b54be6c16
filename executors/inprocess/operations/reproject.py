"""Reprojection to another spatial reference."""

from __future__ import annotations

from typing import Any

from executors.base import ExecutionContext, InvalidInput
from executors.inprocess import params
from executors.inprocess.job import Job


def project(inputs: dict[str, Any], ctx: ExecutionContext) -> dict[str, Any]:
    """The features in ``target_srid`` (or the requested output spatial reference).

    pyproj chooses the most accurate available transformation between the two datums.
    """
    target = params.srid(inputs, "target_srid") or ctx.out_srid
    if target is None:
        raise InvalidInput("target_srid: required (or request an output spatial reference)")
    feats = params.features(inputs)
    job, work = Job.start(ctx, feats, out_srid=target)
    return job.output(work)
