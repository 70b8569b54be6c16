-- honua_gp.hexbin, version 1: hexagon-grid aggregation (count, sum and mean per hexagon).
--
-- p_wkb           geometries as WKB, all in p_srid; each counts at its centroid (computed in
--                 p_srid's coordinates); NULL and empty geometries are not counted
-- p_srid          EPSG code of the input (and of the output hexagons)
-- p_size          the hexagons' edge length (= circumradius; ST_HexagonGrid's size): metres
--                 for geographic input, the CRS's own unit for projected input
-- p_include_empty also return the hexagons of ST_HexagonGrid over the points' extent that
--                 hold no point (count 0)
-- p_values        NULL, or one number per input (NULL: counted but not summed)
-- p_max_cells     most hexagons p_include_empty may produce (SQLSTATE 22023 beyond)
--
-- The grid is ST_HexagonGrid's: flat-topped hexagons, cell (i, j) centred at
-- (1.5 * size * i, sqrt(3) * size * (j + 0.5 * (i mod 2))) of the working frame, whose origin
-- is the grid origin. The working frame is the CRS's plane for projected input and a Lambert
-- azimuthal equal-area projection centred on the data for geographic input (circular mean
-- longitude, mean latitude of the centroids), so every hexagon covers the same ground area.
-- Each point goes to the hexagon of the nearest centre: exactly one hexagon, also on a
-- shared edge (ties go to the western column, then the northern row).
--
-- Returns one row per occupied hexagon (and per empty one with p_include_empty), ordered by
-- (i, j): its ordinal (1, 2, ... in that order), the hexagon in p_srid, its i and j, the
-- number of points, the sum of their values (0 when none has a value; NULL when p_values is
-- NULL) and their mean (NULL when none has
-- a value). Invalid parameters raise SQLSTATE 22023.
--
-- jit is off: the row estimate of unnest is far off and compiling would cost more than
-- the query.

-- A Lambert azimuthal equal-area projection (metres) centred on a lon/lat collection where
-- honua_gp._aeqd_for centres its projection (circular mean of the longitudes, mean latitude).
CREATE OR REPLACE FUNCTION honua_gp._laea_for(p_geoms geometry)
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
  SELECT replace(honua_gp._aeqd_for(p_geoms), '+proj=aeqd ', '+proj=laea ')
$$;

CREATE OR REPLACE FUNCTION honua_gp.hexbin(
    p_wkb bytea[],
    p_srid integer,
    p_size double precision,
    p_include_empty boolean DEFAULT false,
    p_values double precision[] DEFAULT NULL,
    p_max_cells integer DEFAULT 250000)
RETURNS TABLE (ordinal bigint, geom geometry, grid_column integer, grid_row integer,
               point_count integer, value_sum double precision, value_mean double precision)
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path FROM CURRENT
SET jit = off
AS $$
#variable_conflict use_column
DECLARE
  v_geographic boolean;
  v_proj text;
  v_ords bigint[];     -- ordinals of the usable (non-NULL, non-empty) inputs, in order
  v_pts geometry;      -- their centroids collected in the same order, in the working frame
  v_w double precision;
  v_h double precision;
  v_xmin double precision;
  v_ymin double precision;
  v_xmax double precision;
  v_ymax double precision;
  v_cells double precision;
BEGIN
  IF p_size IS NULL OR NOT (p_size > 0 AND p_size < 'Infinity') THEN
    RAISE EXCEPTION 'cell size must be a positive distance' USING ERRCODE = '22023';
  END IF;
  IF p_include_empty IS NULL THEN
    RAISE EXCEPTION 'include_empty must be true or false' USING ERRCODE = '22023';
  END IF;
  IF p_max_cells IS NULL OR p_max_cells < 1 THEN
    RAISE EXCEPTION 'max_cells must be at least 1' USING ERRCODE = '22023';
  END IF;
  IF p_values IS NOT NULL AND cardinality(p_values) <> cardinality(p_wkb) THEN
    RAISE EXCEPTION 'values must have one element per geometry (% values, % geometries)',
      cardinality(p_values), cardinality(p_wkb) USING ERRCODE = '22023';
  END IF;
  v_geographic := honua_gp._is_geographic(p_srid);
  v_w := 1.5 * p_size;
  v_h := p_size * 2 * 0.8660254037844387;  -- ST_HexagonGrid's row height

  SELECT array_agg(s.o ORDER BY s.o), ST_Collect(ST_Centroid(s.g) ORDER BY s.o)
    INTO v_ords, v_pts
    FROM (SELECT x.o, ST_GeomFromWKB(x.w, p_srid) AS g
          FROM unnest(p_wkb) WITH ORDINALITY AS x(w, o)) AS s
   WHERE s.g IS NOT NULL AND NOT ST_IsEmpty(s.g);
  IF v_pts IS NULL THEN
    RETURN;
  END IF;
  IF v_geographic THEN
    v_proj := honua_gp._laea_for(v_pts);
    v_pts := ST_Transform(v_pts, v_proj);
  END IF;
  -- Exact bounds (a geometry's cached box is rounded outward to float4).
  SELECT min(ST_X(d.geom)), min(ST_Y(d.geom)), max(ST_X(d.geom)), max(ST_Y(d.geom))
    INTO v_xmin, v_ymin, v_xmax, v_ymax
    FROM ST_Dump(v_pts) AS d;
  -- ST_Hexagon takes integer cell addresses.
  IF greatest(abs(v_xmin), abs(v_xmax)) / v_w > 2e9
     OR greatest(abs(v_ymin), abs(v_ymax)) / v_h > 2e9 THEN
    RAISE EXCEPTION 'cell size % is too small for coordinates this far from the grid origin', p_size
      USING ERRCODE = '22023';
  END IF;
  IF p_include_empty THEN
    v_cells := (floor(v_xmax / v_w) - floor(v_xmin / v_w) + 2)
             * (floor(v_ymax / v_h) - floor(v_ymin / v_h) + 2);
    IF v_cells > p_max_cells THEN
      RAISE EXCEPTION 'the hexagon grid would have about % cells, more than the limit of %; use a larger cell size',
        v_cells::bigint, p_max_cells USING ERRCODE = '22023';
    END IF;
  END IF;

  RETURN QUERY
  WITH pts AS (
    SELECT v_ords[d.path[1]] AS o, ST_X(d.geom) AS x, ST_Y(d.geom) AS y
    FROM ST_Dump(v_pts) AS d
  ), cand AS (
    -- The point lies in column i0 or i0 + 1; in each, the nearest centre is the nearest row.
    SELECT p.o, p.x, p.y, c.i,
           floor(p.y / v_h - 0.5::float8 * (c.i & 1)::float8 + 0.5::float8)::bigint AS j
    FROM pts AS p
    CROSS JOIN LATERAL (VALUES (floor(p.x / v_w)::bigint), (floor(p.x / v_w)::bigint + 1)) AS c(i)
  ), assigned AS (
    SELECT DISTINCT ON (c.o) c.o, c.i, c.j
    FROM cand AS c
    ORDER BY c.o,
             (c.x - p_size * (1.5::float8 * c.i::float8)) * (c.x - p_size * (1.5::float8 * c.i::float8))
             + (c.y - v_h * (c.j::float8 + 0.5::float8 * (c.i & 1)::float8))
             * (c.y - v_h * (c.j::float8 + 0.5::float8 * (c.i & 1)::float8)),
             c.i
  ), bins AS (
    SELECT a.i::integer AS i, a.j::integer AS j, count(*)::integer AS n,
           sum(p_values[a.o]) AS s, count(p_values[a.o]) AS k
    FROM assigned AS a
    GROUP BY a.i, a.j
  ), cells AS (
    SELECT b.i, b.j, b.n, b.s, b.k FROM bins AS b
    UNION ALL
    SELECT g.i, g.j, 0, NULL::float8, 0::bigint
    FROM ST_HexagonGrid(p_size, ST_MakeEnvelope(v_xmin, v_ymin,
                                                 v_xmax, v_ymax)) AS g
    WHERE p_include_empty
      AND NOT EXISTS (SELECT 1 FROM bins AS b WHERE b.i = g.i AND b.j = g.j)
  )
  SELECT row_number() OVER (ORDER BY c.i, c.j),
         CASE WHEN v_geographic THEN ST_Transform(ST_Hexagon(p_size, c.i, c.j), v_proj, p_srid)
              ELSE ST_SetSRID(ST_Hexagon(p_size, c.i, c.j), p_srid) END,
         c.i, c.j, c.n,
         CASE WHEN p_values IS NULL THEN NULL ELSE coalesce(c.s, 0) END,
         CASE WHEN c.k > 0 THEN c.s / c.k END
  FROM cells AS c
  ORDER BY c.i, c.j;
END
$$;
