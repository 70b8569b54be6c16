"""The frame of one in-process run: working and output CRS, chunking, cancellation, output."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely

from executors.base import DeadlineExceeded, ExecutionContext
from executors.geodata import Features, write_features
from executors.spatialref import is_geographic, reproject

CHUNK_SIZE = 5000


@dataclass
class Job:
    """Inputs are computed in ``work_srid`` (process_srid or the input's) and written in
    ``out_srid`` (the explicit target, else ctx.out_srid, else the input's)."""

    ctx: ExecutionContext
    work_srid: int
    out_srid: int

    @classmethod
    def start(
        cls, ctx: ExecutionContext, features: Features, *, out_srid: int | None = None
    ) -> tuple[Job, Features]:
        job = cls(
            ctx=ctx,
            work_srid=ctx.process_srid or features.srid,
            out_srid=out_srid or ctx.out_srid or features.srid,
        )
        job.checkpoint()
        return job, job.to_work(features)

    @property
    def geographic(self) -> bool:
        return is_geographic(self.work_srid)

    def to_work(self, features: Features) -> Features:
        """Features reprojected to the working CRS."""
        if features.srid == self.work_srid:
            return features
        geoms = reproject(features.geometries, features.srid, self.work_srid)
        return features.replace(geoms, srid=self.work_srid)

    def geometry_to_work(self, geom: shapely.Geometry, srid: int) -> shapely.Geometry:
        return reproject(np.array([geom], dtype=object), srid, self.work_srid)[0]

    def output(self, features: Features) -> dict[str, Any]:
        """Working-CRS features -> feature_collection value in the output CRS."""
        self.checkpoint()
        geoms = reproject(features.geometries, self.work_srid, self.out_srid)
        return write_features(features.replace(geoms, srid=self.out_srid))

    def checkpoint(self, percent: int | None = None, message: str | None = None) -> None:
        """Raise Cancelled / DeadlineExceeded when due; report progress when given."""
        self.ctx.check_cancelled()
        if self.ctx.deadline is not None and time.monotonic() > self.ctx.deadline:
            raise DeadlineExceeded("the run exceeded its maximum runtime")
        if percent is not None:
            self.ctx.progress(percent, message)

    def map(
        self, geoms: np.ndarray, fn: Callable[[np.ndarray], np.ndarray], *, size: int = CHUNK_SIZE
    ) -> np.ndarray:
        """``fn`` over ``geoms`` in chunks (vectorized inside each), checking cancellation."""
        n = len(geoms)
        if n <= size:
            self.checkpoint()
            return np.asarray(fn(geoms), dtype=object)
        out = np.empty(n, dtype=object)
        for start in range(0, n, size):
            self.checkpoint(int(90 * start / n), f"{start} of {n} features")
            stop = min(n, start + size)
            out[start:stop] = np.asarray(fn(geoms[start:stop]), dtype=object)
        self.checkpoint(90, f"{n} of {n} features")
        return out

    def map_values(
        self, geoms: np.ndarray, fn: Callable[[np.ndarray], np.ndarray], *, size: int = CHUNK_SIZE
    ) -> np.ndarray:
        """Like :meth:`map` for a numeric result per geometry."""
        n = len(geoms)
        out = np.empty(n, dtype=float)
        for start in range(0, max(n, 1), size):
            self.checkpoint(int(90 * start / n) if n > size else None, None)
            stop = min(n, start + size)
            out[start:stop] = fn(geoms[start:stop])
        return out
