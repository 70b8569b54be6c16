-- honua_gp.cluster_within, version 1: features within a distance of each other, directly
-- or through other features, form a cluster (ST_ClusterWithin's grouping, one id per input).
--
-- p_wkb       geometries as WKB (any type), all in p_srid
-- p_srid      EPSG code of the input
-- p_distance  the distance (distance <= p_distance links two features): metres on the
--             ground (method ground) or the CRS's own unit (method planar)
-- p_method    as honua_gp.dbscan's: auto (ground for geographic and Web Mercator input),
--             planar, geodesic
--
-- Returns one row per input, in input order: ordinal, cluster id (0, 1, ... in the order
-- of each cluster's first member; a feature near no other is a cluster of its own; NULL
-- for NULL or empty input) and the input geometry. The clusters are the connected
-- components of the "within p_distance" graph: ST_ClusterDBSCAN with minpoints 1, which
-- honua_gp.dbscan (version 2) computes with this numbering and the same ground frame.
CREATE OR REPLACE FUNCTION honua_gp.cluster_within(
    p_wkb bytea[],
    p_srid integer,
    p_distance double precision,
    p_method text DEFAULT 'auto')
RETURNS TABLE (ordinal bigint, cluster_id integer, geom geometry)
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path FROM CURRENT
SET jit = off
AS $$
BEGIN
  IF p_distance IS NULL OR NOT (p_distance >= 0 AND p_distance < 'Infinity') THEN
    RAISE EXCEPTION 'distance must be a non-negative distance' USING ERRCODE = '22023';
  END IF;
  RETURN QUERY SELECT d.ordinal, d.cluster_id, d.geom
               FROM honua_gp.dbscan(p_wkb, p_srid, p_distance, 1, p_method) AS d;
END
$$;
