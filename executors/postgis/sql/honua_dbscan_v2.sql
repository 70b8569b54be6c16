-- honua_gp.dbscan, version 2: density-based clusters (ST_ClusterDBSCAN) of the inputs.
--
-- Changes from version 1: p_method auto measures on the ground for Web Mercator input too
-- (EPSG:3857 and its aliases 900913, 102100, 102113, 3785), whose plane is metric only at
-- the equator (50 units of it are 31 m on the ground in London).
--
-- p_wkb        geometries as WKB (usually points), all in p_srid
-- p_srid       EPSG code of the input
-- p_eps        neighbourhood distance: metres on the ground (method ground) or the CRS's
--              own unit (method planar)
-- p_min_points neighbours (itself included) within p_eps that make a core geometry
-- p_method     auto: ground for geographic and Web Mercator input, planar otherwise;
--              planar: the CRS's plane (degrees for geographic input); geodesic: ground
--              for any input
--
-- Returns one row per input, in input order: ordinal (1-based position in p_wkb), the
-- cluster id and the input geometry. Cluster ids are 0, 1, ... numbered in the order of
-- each cluster's first member; noise (and NULL or empty input) gets NULL. Geographic input
-- is clustered in an azimuthal equidistant projection centred on the data (exact distances
-- from the centre, ~0.4 % transverse scale error 1,000 km away).
--
-- jit is off: the row estimate of unnest is far off and compiling would cost more than
-- the query.
CREATE OR REPLACE FUNCTION honua_gp.dbscan(
    p_wkb bytea[],
    p_srid integer,
    p_eps double precision,
    p_min_points integer,
    p_method text DEFAULT 'auto')
RETURNS TABLE (ordinal bigint, cluster_id integer, geom geometry)
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path FROM CURRENT
SET jit = off
AS $$
#variable_conflict use_column
DECLARE
  v_geographic boolean;
  v_ground boolean;
  v_ords bigint[];     -- ordinals of the usable (non-NULL, non-empty) inputs, in order
  v_usable geometry;   -- those inputs collected, in the same order
  v_proj text;
BEGIN
  IF p_eps IS NULL OR NOT (p_eps >= 0 AND p_eps < 'Infinity') THEN
    RAISE EXCEPTION 'eps must be a non-negative distance' USING ERRCODE = '22023';
  END IF;
  IF p_min_points IS NULL OR p_min_points < 1 THEN
    RAISE EXCEPTION 'min_points must be at least 1, got %', p_min_points USING ERRCODE = '22023';
  END IF;
  IF p_method IS NULL OR p_method NOT IN ('auto', 'planar', 'geodesic') THEN
    RAISE EXCEPTION 'method must be auto, planar or geodesic, got %', p_method USING ERRCODE = '22023';
  END IF;
  v_geographic := honua_gp._is_geographic(p_srid);
  -- The Web Mercator codes are executors.spatialref.WEB_MERCATOR_SRIDS.
  v_ground := CASE p_method
                WHEN 'auto' THEN v_geographic OR p_srid IN (3857, 900913, 102100, 102113, 3785)
                ELSE p_method = 'geodesic' END;

  IF NOT v_ground THEN
    RETURN QUERY
    WITH src AS (
      SELECT x.o, ST_GeomFromWKB(x.w, p_srid) AS g
      FROM unnest(p_wkb) WITH ORDINALITY AS x(w, o)
    ), clustered AS (
      SELECT s.o, ST_ClusterDBSCAN(s.g, p_eps, p_min_points) OVER () AS cid
      FROM src AS s WHERE s.g IS NOT NULL AND NOT ST_IsEmpty(s.g)
    ), numbered AS (
      SELECT c.o, c.cid, min(c.o) OVER (PARTITION BY c.cid) AS first_o FROM clustered AS c
    )
    SELECT s.o,
           CASE WHEN n.cid IS NULL THEN NULL
                ELSE (dense_rank() OVER (ORDER BY n.cid IS NULL, n.first_o))::integer - 1 END,
           s.g
    FROM src AS s LEFT JOIN numbered AS n ON n.o = s.o
    ORDER BY s.o;
    RETURN;
  END IF;

  -- On the ground: project all usable inputs at once (one projection object for the whole
  -- set) and match the projected parts back by position.
  SELECT array_agg(s.o ORDER BY s.o), ST_Collect(s.g ORDER BY s.o)
    INTO v_ords, v_usable
    FROM (SELECT x.o, ST_GeomFromWKB(x.w, p_srid) AS g
          FROM unnest(p_wkb) WITH ORDINALITY AS x(w, o)) AS s
   WHERE s.g IS NOT NULL AND NOT ST_IsEmpty(s.g);
  IF v_usable IS NOT NULL THEN
    v_proj := honua_gp._aeqd_for(
      CASE WHEN v_geographic THEN v_usable ELSE ST_Transform(v_usable, 4326) END);
  END IF;

  RETURN QUERY
  WITH src AS (
    SELECT x.o, ST_GeomFromWKB(x.w, p_srid) AS g
    FROM unnest(p_wkb) WITH ORDINALITY AS x(w, o)
  ), parts AS (
    SELECT d.path[1] AS k, d.geom AS g
    FROM ST_Dump(ST_Transform(v_usable, v_proj)) AS d
    WHERE v_usable IS NOT NULL
  ), projected AS (
    SELECT v_ords[p.k] AS o, ST_Collect(p.g) AS g FROM parts AS p GROUP BY p.k
  ), clustered AS (
    SELECT p.o, ST_ClusterDBSCAN(p.g, p_eps, p_min_points) OVER () AS cid FROM projected AS p
  ), numbered AS (
    SELECT c.o, c.cid, min(c.o) OVER (PARTITION BY c.cid) AS first_o FROM clustered AS c
  )
  SELECT s.o,
         CASE WHEN n.cid IS NULL THEN NULL
              ELSE (dense_rank() OVER (ORDER BY n.cid IS NULL, n.first_o))::integer - 1 END,
         s.g
  FROM src AS s LEFT JOIN numbered AS n ON n.o = s.o
  ORDER BY s.o;
END
$$;
