-- honua_gp.idw, version 1: inverse distance weighted interpolation onto a grid of cells.
--
-- p_wkb           sample geometries as WKB, all in p_srid; each is a sample at its centroid
--                 (computed in p_srid's coordinates)
-- p_srid          EPSG code of the input (and of the output cells)
-- p_cell_size     the cells' side: metres for geographic input, the CRS's unit for projected
-- p_power         the distance exponent, 0 to 10 (0 gives the plain mean of the neighbours)
-- p_search_radius NULL, or only samples within this distance of a cell centre count
-- p_max_neighbors at most this many nearest samples count
-- p_extent        NULL (the samples' extent), or {xmin, ymin, xmax, ymax} in p_srid
-- p_values        one number per input; samples with a NULL value or geometry are left out
-- p_max_cells     most cells the grid may have (SQLSTATE 22023 beyond)
--
-- The working frame is the CRS's plane for projected input and an azimuthal equidistant
-- projection centred on the samples (honua_gp._aeqd_for) for geographic input; a geographic
-- extent is taken as the bounds of its densified outline in that frame. The grid starts at
-- the extent's north-west corner: columns eastwards, rows southwards, as many as cover the
-- extent (at least one each). A cell's value is, over its k nearest samples (k-nearest by
-- KNN on a GiST index, within the search radius), sum(v / d^p) / sum(1 / d^p) with d the
-- distance to the cell's centre; a sample exactly at the centre gives its own value (the
-- mean of those there); a cell with no sample within the radius gets NULL.
--
-- Returns one row per cell, rows north to south and columns west to east: its ordinal (1, 2,
-- ... in that order), the cell as a polygon in p_srid (its four corners transformed), its column and row, and the value.
-- Invalid parameters raise SQLSTATE 22023.
--
-- VOLATILE: the samples go to a temporary table with a GiST index for the KNN searches
-- (<-> gives the exact distance between points). One KNN index scan per cell costs ~0.13 ms
-- here: 250,000 cells take ~30 s, so the largest grids may meet the statement timeout and
-- fall back to the in-process tier (~4 s).
CREATE OR REPLACE FUNCTION honua_gp.idw(
    p_wkb bytea[],
    p_srid integer,
    p_cell_size double precision,
    p_power double precision,
    p_search_radius double precision,
    p_max_neighbors integer,
    p_extent double precision[],
    p_values double precision[],
    p_max_cells integer DEFAULT 250000)
RETURNS TABLE (ordinal bigint, geom geometry, grid_column integer, grid_row integer,
               value double precision)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path FROM CURRENT
SET jit = off
AS $$
#variable_conflict use_column
DECLARE
  v_geographic boolean;
  v_proj text;
  v_pts geometry;        -- the usable samples' centroids, in input order, in the working frame
  v_vals float8[];       -- their values, in the same order
  v_frame integer;       -- SRID of the working frame's geometries (0 for a proj string)
  v_outline geometry;
  v_xmin double precision;
  v_ymin double precision;
  v_xmax double precision;
  v_ymax double precision;
  v_cols double precision;
  v_rows double precision;
BEGIN
  IF p_cell_size IS NULL OR NOT (p_cell_size > 0 AND p_cell_size < 'Infinity') THEN
    RAISE EXCEPTION 'cell size must be a positive distance' USING ERRCODE = '22023';
  END IF;
  IF p_power IS NULL OR NOT (p_power >= 0 AND p_power <= 10) THEN
    RAISE EXCEPTION 'power must be between 0 and 10' USING ERRCODE = '22023';
  END IF;
  IF p_search_radius IS NOT NULL AND NOT (p_search_radius > 0 AND p_search_radius < 'Infinity') THEN
    RAISE EXCEPTION 'search radius must be a positive distance' USING ERRCODE = '22023';
  END IF;
  IF p_max_neighbors IS NULL OR p_max_neighbors < 1 THEN
    RAISE EXCEPTION 'max_neighbors must be at least 1' USING ERRCODE = '22023';
  END IF;
  IF p_max_cells IS NULL OR p_max_cells < 1 THEN
    RAISE EXCEPTION 'max_cells must be at least 1' USING ERRCODE = '22023';
  END IF;
  IF p_values IS NULL OR cardinality(p_values) <> cardinality(p_wkb) THEN
    RAISE EXCEPTION 'values must have one element per geometry' USING ERRCODE = '22023';
  END IF;
  IF p_extent IS NOT NULL AND (cardinality(p_extent) <> 4
      OR NOT (p_extent[1] < p_extent[3] AND p_extent[2] < p_extent[4])
      OR NOT (p_extent[1] > '-Infinity' AND p_extent[3] < 'Infinity'
              AND p_extent[2] > '-Infinity' AND p_extent[4] < 'Infinity')) THEN
    RAISE EXCEPTION 'extent must be {xmin, ymin, xmax, ymax} with minimum below maximum'
      USING ERRCODE = '22023';
  END IF;
  v_geographic := honua_gp._is_geographic(p_srid);

  SELECT ST_Collect(ST_Centroid(s.g) ORDER BY s.o), array_agg(p_values[s.o] ORDER BY s.o)
    INTO v_pts, v_vals
    FROM (SELECT x.o, ST_GeomFromWKB(x.w, p_srid) AS g
          FROM unnest(p_wkb) WITH ORDINALITY AS x(w, o)) AS s
   WHERE s.g IS NOT NULL AND NOT ST_IsEmpty(s.g) AND p_values[s.o] IS NOT NULL;
  IF v_pts IS NULL THEN
    RAISE EXCEPTION 'idw needs at least one sample with a geometry and a numeric value'
      USING ERRCODE = '22023';
  END IF;
  IF v_geographic THEN
    v_proj := honua_gp._aeqd_for(v_pts);
    v_pts := ST_Transform(v_pts, v_proj);
  END IF;
  v_frame := ST_SRID(v_pts);

  IF p_extent IS NULL THEN
    SELECT min(ST_X(d.geom)), min(ST_Y(d.geom)), max(ST_X(d.geom)), max(ST_Y(d.geom))
      INTO v_xmin, v_ymin, v_xmax, v_ymax
      FROM ST_Dump(v_pts) AS d;
  ELSE
    v_outline := ST_MakeEnvelope(p_extent[1], p_extent[2], p_extent[3], p_extent[4], p_srid);
    IF v_geographic THEN
      v_outline := ST_Transform(
        ST_Segmentize(v_outline, least(p_extent[3] - p_extent[1], p_extent[4] - p_extent[2]) / 16),
        v_proj);
    END IF;
    SELECT min(ST_X(d.geom)), min(ST_Y(d.geom)), max(ST_X(d.geom)), max(ST_Y(d.geom))
      INTO v_xmin, v_ymin, v_xmax, v_ymax
      FROM ST_DumpPoints(v_outline) AS d;
  END IF;
  v_cols := greatest(1, ceil((v_xmax - v_xmin) / p_cell_size));
  v_rows := greatest(1, ceil((v_ymax - v_ymin) / p_cell_size));
  IF v_cols * v_rows > p_max_cells THEN
    RAISE EXCEPTION 'the grid would have % cells (% columns x % rows), more than the limit of %; use a larger cell size or a smaller extent',
      v_cols * v_rows, v_cols, v_rows, p_max_cells USING ERRCODE = '22023';
  END IF;

  DROP TABLE IF EXISTS pg_temp.honua_idw_samples;
  CREATE TEMPORARY TABLE honua_idw_samples ON COMMIT DROP AS
    SELECT d.geom AS g, v_vals[d.path[1]] AS v FROM ST_Dump(v_pts) AS d;
  CREATE INDEX ON pg_temp.honua_idw_samples USING gist (g);
  ANALYZE pg_temp.honua_idw_samples;

  RETURN QUERY
  WITH cells AS (
    SELECT r, c,
           ST_SetSRID(ST_MakePoint(v_xmin + (c::float8 + 0.5::float8) * p_cell_size,
                                   v_ymax - (r::float8 + 0.5::float8) * p_cell_size), v_frame) AS centre
    FROM generate_series(0, v_rows::integer - 1) AS r, generate_series(0, v_cols::integer - 1) AS c
  )
  SELECT cl.r::bigint * v_cols::bigint + cl.c + 1,
         CASE WHEN v_geographic
              THEN ST_Transform(ST_MakeEnvelope(v_xmin + cl.c * p_cell_size, v_ymax - (cl.r + 1) * p_cell_size,
                                                v_xmin + (cl.c + 1) * p_cell_size, v_ymax - cl.r * p_cell_size),
                                v_proj, p_srid)
              ELSE ST_MakeEnvelope(v_xmin + cl.c * p_cell_size, v_ymax - (cl.r + 1) * p_cell_size,
                                   v_xmin + (cl.c + 1) * p_cell_size, v_ymax - cl.r * p_cell_size, p_srid)
         END,
         cl.c, cl.r, n.value
  FROM cells AS cl
  CROSS JOIN LATERAL (
    SELECT CASE WHEN count(*) = 0 THEN NULL
                WHEN bool_or(k.d = 0) THEN avg(k.v) FILTER (WHERE k.d = 0)
                ELSE sum(k.v / k.d ^ p_power) FILTER (WHERE k.d > 0)
                     / sum(1 / k.d ^ p_power) FILTER (WHERE k.d > 0) END AS value
    FROM (
      SELECT s.v, s.g <-> cl.centre AS d
      FROM pg_temp.honua_idw_samples AS s
      WHERE p_search_radius IS NULL
      ORDER BY 2
      LIMIT p_max_neighbors
    ) AS k
    HAVING p_search_radius IS NULL
    UNION ALL
    SELECT CASE WHEN count(*) = 0 THEN NULL
                WHEN bool_or(k.d = 0) THEN avg(k.v) FILTER (WHERE k.d = 0)
                ELSE sum(k.v / k.d ^ p_power) FILTER (WHERE k.d > 0)
                     / sum(1 / k.d ^ p_power) FILTER (WHERE k.d > 0) END
    FROM (
      SELECT s.v, s.g <-> cl.centre AS d
      FROM pg_temp.honua_idw_samples AS s
      WHERE p_search_radius IS NOT NULL AND ST_DWithin(s.g, cl.centre, p_search_radius)
      ORDER BY 2
      LIMIT p_max_neighbors
    ) AS k
    HAVING p_search_radius IS NOT NULL
  ) AS n
  ORDER BY cl.r, cl.c;

  DROP TABLE pg_temp.honua_idw_samples;
END
$$;
