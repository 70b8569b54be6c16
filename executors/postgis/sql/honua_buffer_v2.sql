-- honua_gp.buffer, version 2: polygons at a distance around each input geometry.
--
-- Changes from version 1: p_method auto measures on the ground for Web Mercator input too
-- (EPSG:3857 and its aliases 900913, 102100, 102113, 3785), whose plane is metric only at
-- the equator (50 units of it are 31 m on the ground in London).
--
-- p_wkb       geometries as WKB (NULL elements give NULL results), all in p_srid
-- p_srid      EPSG code of the input (and of the output)
-- p_distance  metres on the ground (method ground) or the CRS's own unit (method planar)
-- p_quad_segs segments per quarter circle (1..1000)
-- p_endcap    round | flat | square;  p_join: round | mitre | bevel;  p_mitre_limit > 0
-- p_dissolve  union all buffers into one row (ordinal NULL)
-- p_method    auto: ground for geographic and Web Mercator input, planar otherwise;
--             planar: the CRS's plane (degrees for geographic input); geodesic: ground
--             for any input
--
-- Returns one row per input (ordinal = 1-based position in p_wkb) or one dissolved row.
-- On the ground, each feature is buffered in the UTM zone (or UPS cap) of its centroid
-- with the distance scaled by the point scale factor there: accurate to ~1e-5 for
-- features up to a few hundred km across. Geographic results crossing the antimeridian
-- are split there. Invalid parameters raise SQLSTATE 22023.
--
-- jit is off: the row estimate of unnest is far off and compiling would cost more than
-- the query.
CREATE OR REPLACE FUNCTION honua_gp.buffer(
    p_wkb bytea[],
    p_srid integer,
    p_distance double precision,
    p_quad_segs integer DEFAULT 8,
    p_endcap text DEFAULT 'round',
    p_join text DEFAULT 'round',
    p_mitre_limit double precision DEFAULT 5.0,
    p_dissolve boolean DEFAULT false,
    p_method text DEFAULT 'auto')
RETURNS TABLE (ordinal bigint, geom geometry)
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path FROM CURRENT
SET jit = off
AS $$
#variable_conflict use_column
DECLARE
  v_geographic boolean;
  v_ground boolean;
  v_params text;
BEGIN
  -- PostgreSQL orders NaN above Infinity: this refuses NaN and both infinities (GEOS
  -- does not survive a NaN distance).
  IF p_distance IS NULL OR NOT (p_distance > '-Infinity' AND p_distance < 'Infinity') THEN
    RAISE EXCEPTION 'buffer distance must be a finite number' USING ERRCODE = '22023';
  END IF;
  IF p_quad_segs IS NULL OR p_quad_segs < 1 OR p_quad_segs > 1000 THEN
    RAISE EXCEPTION 'quad_segs must be between 1 and 1000, got %', p_quad_segs USING ERRCODE = '22023';
  END IF;
  IF p_endcap IS NULL OR p_endcap NOT IN ('round', 'flat', 'square') THEN
    RAISE EXCEPTION 'end cap style must be round, flat or square, got %', p_endcap USING ERRCODE = '22023';
  END IF;
  IF p_join IS NULL OR p_join NOT IN ('round', 'mitre', 'bevel') THEN
    RAISE EXCEPTION 'join style must be round, mitre or bevel, got %', p_join USING ERRCODE = '22023';
  END IF;
  IF p_mitre_limit IS NULL OR NOT (p_mitre_limit > 0 AND p_mitre_limit < 'Infinity') THEN
    RAISE EXCEPTION 'mitre limit must be a positive number' USING ERRCODE = '22023';
  END IF;
  IF p_method IS NULL OR p_method NOT IN ('auto', 'planar', 'geodesic') THEN
    RAISE EXCEPTION 'method must be auto, planar or geodesic, got %', p_method USING ERRCODE = '22023';
  END IF;
  v_geographic := honua_gp._is_geographic(p_srid);
  -- The Web Mercator codes are executors.spatialref.WEB_MERCATOR_SRIDS.
  v_ground := CASE p_method
                WHEN 'auto' THEN v_geographic OR p_srid IN (3857, 900913, 102100, 102113, 3785)
                ELSE p_method = 'geodesic' END;
  v_params := format('quad_segs=%s endcap=%s join=%s mitre_limit=%s',
                     p_quad_segs, p_endcap, p_join, p_mitre_limit);

  -- MATERIALIZED and OFFSET 0 keep each expensive expression evaluated once per row.
  RETURN QUERY
  WITH src AS (
    SELECT x.o, ST_GeomFromWKB(x.w, p_srid) AS g
    FROM unnest(p_wkb) WITH ORDINALITY AS x(w, o)
  ), buffered AS MATERIALIZED (
    SELECT s.o, s.g AS source,
           CASE
             WHEN s.g IS NULL THEN NULL
             WHEN NOT v_ground THEN ST_Buffer(s.g, p_distance, v_params)
             WHEN ST_IsEmpty(s.g) THEN ST_SetSRID('POLYGON EMPTY'::geometry, p_srid)
             ELSE ST_Transform(
                    ST_Buffer(ST_Transform(s.g, f.local_srid),
                              p_distance * honua_gp._scale_at(f.c, f.local_srid),
                              v_params),
                    p_srid)
           END AS g
    FROM src AS s
    LEFT JOIN LATERAL (
      SELECT c0.c, honua_gp._local_srid(ST_X(c0.c), ST_Y(c0.c)) AS local_srid
      FROM (SELECT ST_Centroid(CASE WHEN v_geographic THEN s.g ELSE ST_Transform(s.g, 4326) END) AS c
            OFFSET 0) AS c0
      WHERE v_ground
      OFFSET 0
    ) AS f ON true
  ), placed AS (
    SELECT b.o,
           CASE WHEN v_geographic AND ST_XMax(b.g) - ST_XMin(b.g) > 180
                THEN honua_gp._wrap_dateline(b.g, b.source)
                ELSE b.g END AS g
    FROM buffered AS b
  )
  SELECT p.o, p.g FROM placed AS p WHERE NOT p_dissolve
  UNION ALL
  SELECT NULL::bigint, ST_Union(p.g) FROM placed AS p WHERE p_dissolve HAVING count(p.g) > 0;
END
$$;
