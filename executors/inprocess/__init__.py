"""The in-process tier: vectorized shapely 2 / GEOS operations in the worker process.

Linear distances are honoured on the ground: lon/lat data is processed in local transverse
Mercator frames (see ``executors.localframes``), and so is Web Mercator data (through its
geographic base) unless ``method: planar``; other projected data in its CRS's plane and unit
(or through its geographic base with ``method: geodesic``); areas and lengths are geodesic.
See ``executors.spatialref.ground_distances``.
"""
