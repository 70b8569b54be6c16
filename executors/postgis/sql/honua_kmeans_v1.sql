-- honua_gp.kmeans, version 1: k-means partition (ST_ClusterKMeans) of input points.
--
-- p_wkb     points as WKB, all in p_srid (Z and M are ignored: ST_ClusterKMeans would
--           cluster in 3D and weigh by M)
-- p_srid    EPSG code of the input
-- p_k       number of clusters, 1 to the number of usable (non-NULL, non-empty) points
-- p_method  auto: on the ground for geographic and Web Mercator input, in the CRS's plane
--           otherwise; planar: the CRS's plane (degrees for geographic input); geodesic:
--           on the ground for any input
--
-- Returns one row per input, in input order: ordinal (1-based position in p_wkb), the
-- cluster id and the input geometry. Cluster ids are 0, 1, ... numbered in the order of
-- each cluster's first member (ST_ClusterKMeans' own numbering is arbitrary); NULL and
-- empty inputs get NULL. When the points have no more than p_k distinct locations, each
-- location is a cluster (the partition of zero inertia; ST_ClusterKMeans would give fewer).
-- On the ground, points are clustered in an azimuthal equidistant projection centred on
-- them, as honua_gp.dbscan does. ST_ClusterKMeans is deterministic (k-means++ seeded
-- from the data), so one input always gives one answer; the in-process k-means may settle
-- on another local optimum of ambiguous data.
--
-- jit is off: the row estimate of unnest is far off and compiling would cost more than
-- the query.
CREATE OR REPLACE FUNCTION honua_gp.kmeans(
    p_wkb bytea[],
    p_srid integer,
    p_k integer,
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
  v_ords bigint[];     -- ordinals of the usable inputs, in order
  v_usable geometry;   -- those inputs (2D) collected, in the same order
  v_count integer;
  v_distinct integer;
  v_other boolean;     -- some usable input is not a point
BEGIN
  IF p_k IS NULL OR p_k < 1 THEN
    RAISE EXCEPTION 'k must be at least 1, got %', p_k USING ERRCODE = '22023';
  END IF;
  IF p_method IS NULL OR p_method NOT IN ('auto', 'planar', 'geodesic') THEN
    RAISE EXCEPTION 'method must be auto, planar or geodesic, got %', p_method USING ERRCODE = '22023';
  END IF;
  v_geographic := honua_gp._is_geographic(p_srid);
  -- The Web Mercator codes are executors.spatialref.WEB_MERCATOR_SRIDS.
  v_ground := CASE p_method
                WHEN 'auto' THEN v_geographic OR p_srid IN (3857, 900913, 102100, 102113, 3785)
                ELSE p_method = 'geodesic' END;

  SELECT array_agg(s.o ORDER BY s.o), ST_Collect(ST_Force2D(s.g) ORDER BY s.o),
         count(*), count(DISTINCT CASE WHEN GeometryType(s.g) = 'POINT' THEN ARRAY[ST_X(s.g), ST_Y(s.g)] END),
         bool_or(GeometryType(s.g) <> 'POINT')
    INTO v_ords, v_usable, v_count, v_distinct, v_other
    FROM (SELECT x.o, ST_GeomFromWKB(x.w, p_srid) AS g
          FROM unnest(p_wkb) WITH ORDINALITY AS x(w, o)) AS s
   WHERE s.g IS NOT NULL AND NOT ST_IsEmpty(s.g);
  IF v_other THEN
    RAISE EXCEPTION 'kmeans clusters points; other geometry types were given' USING ERRCODE = '22023';
  END IF;
  IF v_count > 0 AND p_k > v_count THEN
    RAISE EXCEPTION 'k (%) must not exceed the number of points (%)', p_k, v_count USING ERRCODE = '22023';
  END IF;
  IF v_ground AND v_usable IS NOT NULL THEN
    v_usable := ST_Transform(v_usable, honua_gp._aeqd_for(
      CASE WHEN v_geographic THEN v_usable ELSE ST_Transform(v_usable, 4326) END));
  END IF;

  RETURN QUERY
  WITH src AS (
    SELECT x.o, ST_GeomFromWKB(x.w, p_srid) AS g
    FROM unnest(p_wkb) WITH ORDINALITY AS x(w, o)
  ), pts AS (
    SELECT v_ords[d.path[1]] AS o, d.geom AS g
    FROM ST_Dump(v_usable) AS d WHERE v_usable IS NOT NULL
  ), clustered AS (
    SELECT p.o, ST_ClusterKMeans(p.g, p_k) OVER () AS cid FROM pts AS p WHERE v_distinct > p_k
    UNION ALL
    SELECT p.o, dense_rank() OVER (ORDER BY ST_X(p.g), ST_Y(p.g))::integer
    FROM pts AS p WHERE v_distinct <= p_k
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
