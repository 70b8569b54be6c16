-- honua_gp.delaunay, version 1: Delaunay triangles (ST_DelaunayTriangles) of all input
-- vertices, or their edges.
--
-- p_wkb         geometries as WKB (any type), all in p_srid; every vertex is a site (Z and
--               M are ignored), NULL and empty inputs add none
-- p_srid        EPSG code of the input (and of the output)
-- p_tolerance   snapping distance in the working plane (metres for geographic input, the
--               CRS's unit otherwise); the distance used is never less than 1e-9 of the
--               diagonal of the vertices' envelope nor 1e-13 of their largest absolute
--               coordinate (float noise), as honua_gp.voronoi (version 2)
-- p_only_edges  return the triangles' edges as lines instead of the triangles
--
-- Returns (ordinal = 1-based number of the triangle or edge, geom) in ST_DelaunayTriangles'
-- order. Vertices within the snapping distance of each other (transitively) are one site,
-- placed at the first of them (in ordinal order, then vertex order), so every corner is an
-- input vertex; fewer than 3 sites raise 22023; collinear sites give no rows. Geographic
-- input is triangulated in one transverse Mercator plane centred on the data's longitude
-- span (the frame of the in-process delaunay, executors.localframes.frame_for: the input
-- datum's ellipsoid, lat_0 0, k_0 1, continuous across the antimeridian), and results
-- that reach past +/-180 are split there.
--
-- jit is off: the row estimates of unnest/ST_Dump are far off and compiling would cost more
-- than the query.
CREATE OR REPLACE FUNCTION honua_gp.delaunay(
    p_wkb bytea[],
    p_srid integer,
    p_tolerance double precision DEFAULT 0,
    p_only_edges boolean DEFAULT false)
RETURNS TABLE (ordinal bigint, geom geometry)
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path FROM CURRENT
SET jit = off
AS $$
#variable_conflict use_column
DECLARE
  v_geographic boolean;
  v_vertices geometry;  -- MULTIPOINT of every input vertex, in order, in p_srid
  v_work geometry;      -- v_vertices in the working plane
  v_proj text;
  v_x0 double precision;
  v_x1 double precision;
  v_shifted geometry;
  v_snap double precision;
  v_sites geometry;
  v_count integer;
  v_result geometry;
BEGIN
  IF p_tolerance IS NULL OR NOT (p_tolerance >= 0 AND p_tolerance < 'Infinity') THEN
    RAISE EXCEPTION 'tolerance must be a non-negative number' USING ERRCODE = '22023';
  END IF;
  IF p_only_edges IS NULL THEN
    RAISE EXCEPTION 'only_edges must be true or false' USING ERRCODE = '22023';
  END IF;
  v_geographic := honua_gp._is_geographic(p_srid);

  SELECT ST_Collect(ST_Force2D(d.geom) ORDER BY s.o, d.path)
    INTO v_vertices
    FROM (SELECT x.o, ST_GeomFromWKB(x.w, p_srid) AS g
          FROM unnest(p_wkb) WITH ORDINALITY AS x(w, o)) AS s
    CROSS JOIN LATERAL ST_DumpPoints(s.g) AS d
   WHERE s.g IS NOT NULL;
  IF v_vertices IS NULL THEN
    RAISE EXCEPTION 'a triangulation needs at least 3 distinct vertices' USING ERRCODE = '22023';
  END IF;

  IF v_geographic THEN
    v_x0 := ST_XMin(v_vertices);
    v_x1 := ST_XMax(v_vertices);
    v_work := v_vertices;
    IF v_x1 - v_x0 > 180 THEN  -- straddling the antimeridian: continuous east of 180
      v_shifted := ST_ShiftLongitude(v_vertices);
      IF ST_XMax(v_shifted) - ST_XMin(v_shifted) < v_x1 - v_x0 THEN
        v_work := v_shifted;
        v_x0 := ST_XMin(v_shifted);
        v_x1 := ST_XMax(v_shifted);
      END IF;
    END IF;
    -- The input's own ellipsoid (and datum), so the projection is the only step.
    SELECT format('+proj=tmerc +lat_0=0 +lon_0=%s +k_0=1 +x_0=0 +y_0=0 %s +units=m +over +no_defs',
                  round(((v_x0 + v_x1) / 2)::numeric, 6),
                  array_to_string(ARRAY(
                    SELECT m[1] FROM regexp_matches(
                      s.proj4text, '(\+(?:datum|ellps|a|b|rf|towgs84|nadgrids)=\S+)', 'g') AS m), ' '))
      INTO v_proj FROM spatial_ref_sys AS s WHERE s.srid = p_srid;
    v_work := ST_Transform(v_work, v_proj);
  ELSE
    v_work := v_vertices;
  END IF;
  v_snap := greatest(p_tolerance,
                     1e-9 * sqrt((ST_XMax(v_work) - ST_XMin(v_work)) ^ 2 + (ST_YMax(v_work) - ST_YMin(v_work)) ^ 2),
                     1e-13 * greatest(abs(ST_XMin(v_work)), abs(ST_XMax(v_work)),
                                      abs(ST_YMin(v_work)), abs(ST_YMax(v_work))));

  -- Sites: the connected components of "within v_snap", each at its first vertex.
  SELECT ST_Collect(c.g ORDER BY c.k) FILTER (WHERE c.k = c.lead), count(*) FILTER (WHERE c.k = c.lead)
    INTO v_sites, v_count
    FROM (SELECT cl.k, cl.g, min(cl.k) OVER (PARTITION BY cl.cid) AS lead
          FROM (SELECT d.path[1] AS k, d.geom AS g,
                       ST_ClusterDBSCAN(d.geom, v_snap, 1) OVER () AS cid
                FROM ST_Dump(v_work) AS d) AS cl) AS c;
  IF v_count < 3 THEN
    RAISE EXCEPTION 'a triangulation needs at least 3 distinct vertices' USING ERRCODE = '22023';
  END IF;
  v_result := ST_DelaunayTriangles(v_sites, 0, CASE WHEN p_only_edges THEN 1 ELSE 0 END);
  IF v_geographic THEN
    v_result := ST_Transform(v_result, v_proj, p_srid);
  END IF;

  RETURN QUERY
  WITH parts AS (
    SELECT d.path[1]::bigint AS n, d.geom AS g FROM ST_Dump(v_result) AS d
  )
  SELECT p.n,
         CASE WHEN NOT v_geographic OR (ST_XMin(p.g) >= -180 AND ST_XMax(p.g) <= 180) THEN p.g
              ELSE ST_Union(ARRAY[
                     ST_Intersection(p.g, ST_MakeEnvelope(-180, -90, 180, 90, p_srid)),
                     ST_Translate(ST_Intersection(p.g, ST_MakeEnvelope(180, -90, 540, 90, p_srid)), -360, 0),
                     ST_Translate(ST_Intersection(p.g, ST_MakeEnvelope(-540, -90, -180, 90, p_srid)), 360, 0)])
         END
  FROM parts AS p
  ORDER BY p.n;
END
$$;
