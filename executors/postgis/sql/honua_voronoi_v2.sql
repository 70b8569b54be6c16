-- honua_gp.voronoi, version 2: one Voronoi (Thiessen) cell per input feature.
--
-- Changes from version 1: seeds closer than a snapping distance are one site (version 1
-- built a cell for every bit-distinct seed, so two records of one address one ULP apart
-- split their cell along an arbitrary line), and p_tolerance is that snapping distance.
--
-- p_wkb          geometries as WKB, all in p_srid. Points generate cells; a MultiPoint gets
--                the union of its parts' cells; any other geometry uses its centroid.
--                NULL and empty inputs get no row.
-- p_srid         EPSG code of the input (and of the output)
-- p_clip_extent  optional [xmin, ymin, xmax, ymax] in p_srid the cells are cut to
-- p_clip_margin  optional: cut to the seeds' envelope grown by this distance (metres for
--                geographic input, the CRS's unit otherwise)
-- p_clip_ratio   optional: cut to the seeds' envelope grown by this fraction of its larger
--                side (by 1 metre / CRS unit when all seeds coincide)
-- p_tolerance    snapping distance (same unit as p_clip_margin); the distance used is never
--                less than 1e-9 of the diagonal of the seeds' envelope nor 1e-13 of their
--                largest absolute coordinate, both in the working CRS (float noise)
--
-- Returns (ordinal = 1-based position in p_wkb, cell) ordered by ordinal. Seeds within the
-- snapping distance of each other (transitively: ST_ClusterDBSCAN(seed, distance, 1)) are
-- one site, placed at the first of them (in ordinal order, then part order), and share its
-- cell; the in-process voronoi snaps by the same rule. Geographic input is computed in an
-- azimuthal equidistant projection centred on the seeds, so cells follow distances on the
-- ground. Without any clip the cells reach ST_VoronoiPolygons' default extent. Invalid
-- parameters raise SQLSTATE 22023.
--
-- jit is off: the row estimates of unnest/ST_Dump are far off and compiling would cost more
-- than the query.
CREATE OR REPLACE FUNCTION honua_gp.voronoi(
    p_wkb bytea[],
    p_srid integer,
    p_clip_extent double precision[] DEFAULT NULL,
    p_clip_margin double precision DEFAULT NULL,
    p_clip_ratio double precision DEFAULT NULL,
    p_tolerance double precision DEFAULT 0)
RETURNS TABLE (ordinal bigint, geom geometry)
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path FROM CURRENT
SET jit = off
AS $$
#variable_conflict use_column
DECLARE
  v_geographic boolean;
  v_owner bigint[];    -- v_owner[k]: ordinal of the input that seed k comes from
  v_seeds geometry;    -- MULTIPOINT of the seeds, in order, in p_srid
  v_proj text;         -- working projection of geographic input
  v_work geometry;     -- v_seeds in the working CRS
  v_box geometry;      -- p_clip_extent in p_srid
  v_cut geometry;      -- margin clip in the working CRS
  v_extend geometry;
  v_cells geometry;
  v_x0 double precision;
  v_y0 double precision;
  v_x1 double precision;
  v_y1 double precision;
  v_side double precision;
  v_snap double precision;  -- snapping distance in the working CRS
  v_site_of integer[];  -- v_site_of[k]: the site (1-based, in order of first seed) of seed k
  v_sites geometry;     -- MULTIPOINT of the sites, in order, in the working CRS
BEGIN
  IF p_tolerance IS NULL OR NOT (p_tolerance >= 0 AND p_tolerance < 'Infinity') THEN
    RAISE EXCEPTION 'tolerance must be a non-negative number' USING ERRCODE = '22023';
  END IF;
  IF p_clip_margin IS NOT NULL AND NOT (p_clip_margin >= 0 AND p_clip_margin < 'Infinity') THEN
    RAISE EXCEPTION 'clip margin must be a non-negative number' USING ERRCODE = '22023';
  END IF;
  IF p_clip_ratio IS NOT NULL AND NOT (p_clip_ratio >= 0 AND p_clip_ratio < 'Infinity') THEN
    RAISE EXCEPTION 'clip ratio must be a non-negative number' USING ERRCODE = '22023';
  END IF;
  IF p_clip_extent IS NOT NULL AND (
       array_length(p_clip_extent, 1) IS DISTINCT FROM 4
       OR array_position(p_clip_extent, NULL) IS NOT NULL
       OR NOT (p_clip_extent[1] < p_clip_extent[3] AND p_clip_extent[2] < p_clip_extent[4])
       OR EXISTS (SELECT 1 FROM unnest(p_clip_extent) AS e(v) WHERE NOT (e.v > '-Infinity' AND e.v < 'Infinity'))) THEN
    RAISE EXCEPTION 'clip extent must be [xmin, ymin, xmax, ymax] with min < max' USING ERRCODE = '22023';
  END IF;
  v_geographic := honua_gp._is_geographic(p_srid);

  SELECT array_agg(q.o ORDER BY q.o, q.path), ST_Collect(q.p ORDER BY q.o, q.path)
    INTO v_owner, v_seeds
    FROM (
      SELECT s.o, d.path, d.geom AS p
      FROM (SELECT x.o, ST_GeomFromWKB(x.w, p_srid) AS g
            FROM unnest(p_wkb) WITH ORDINALITY AS x(w, o)) AS s
      CROSS JOIN LATERAL ST_Dump(
        CASE WHEN GeometryType(s.g) IN ('POINT', 'MULTIPOINT') THEN s.g ELSE ST_Centroid(s.g) END) AS d
      WHERE s.g IS NOT NULL AND NOT ST_IsEmpty(d.geom)
    ) AS q;
  IF v_seeds IS NULL THEN
    RETURN;
  END IF;

  IF v_geographic THEN
    v_proj := honua_gp._aeqd_for(v_seeds);
    v_work := ST_Transform(v_seeds, v_proj);
  ELSE
    v_work := v_seeds;
  END IF;
  v_x0 := ST_XMin(v_work);
  v_y0 := ST_YMin(v_work);
  v_x1 := ST_XMax(v_work);
  v_y1 := ST_YMax(v_work);
  v_side := greatest(v_x1 - v_x0, v_y1 - v_y0);
  v_snap := greatest(p_tolerance,
                     1e-9 * sqrt((v_x1 - v_x0) ^ 2 + (v_y1 - v_y0) ^ 2),
                     1e-13 * greatest(abs(v_x0), abs(v_x1), abs(v_y0), abs(v_y1)));

  -- Sites: the connected components of "within v_snap", each at its first seed.
  SELECT array_agg(q.site ORDER BY q.k), ST_Collect(q.g ORDER BY q.k) FILTER (WHERE q.k = q.lead)
    INTO v_site_of, v_sites
    FROM (
      SELECT c.k, c.g, c.lead, (dense_rank() OVER (ORDER BY c.lead))::integer AS site
      FROM (
        SELECT cl.k, cl.g, min(cl.k) OVER (PARTITION BY cl.cid) AS lead
        FROM (SELECT d.path[1] AS k, d.geom AS g,
                     ST_ClusterDBSCAN(d.geom, v_snap, 1) OVER () AS cid
              FROM ST_Dump(v_work) AS d) AS cl
      ) AS c
    ) AS q;
  IF p_clip_extent IS NOT NULL THEN
    v_box := ST_MakeEnvelope(p_clip_extent[1], p_clip_extent[2], p_clip_extent[3], p_clip_extent[4], p_srid);
  END IF;
  IF p_clip_margin IS NOT NULL THEN
    v_cut := ST_Expand(ST_Envelope(v_work), p_clip_margin);
  ELSIF p_clip_ratio IS NOT NULL THEN
    v_cut := ST_Expand(ST_Envelope(v_work), CASE WHEN v_side > 0 THEN v_side * p_clip_ratio ELSE 1 END);
  END IF;
  -- The diagram must cover whatever it is cut to.
  IF v_box IS NOT NULL OR v_cut IS NOT NULL THEN
    v_extend := ST_Envelope(ST_Collect(ARRAY[
      v_work,
      v_cut,
      CASE WHEN v_box IS NULL THEN NULL
           WHEN v_geographic THEN ST_Transform(
             ST_Segmentize(v_box, greatest(p_clip_extent[3] - p_clip_extent[1],
                                           p_clip_extent[4] - p_clip_extent[2]) / 64), v_proj)
           ELSE v_box END]));
  END IF;
  v_cells := ST_VoronoiPolygons(v_sites, 0, v_extend);
  IF ST_IsEmpty(v_cells) AND v_extend IS NOT NULL THEN
    v_cells := ST_Collect(ARRAY[v_extend]);  -- one site: its cell is everything
  END IF;
  IF v_side <= 0 THEN
    v_side := 1;
  END IF;

  -- Cells are matched to the sites inside them by a hash join on a multi-level grid: a cell
  -- is keyed on the (at most 3x3) squares of the level whose squares are just larger than
  -- its part within the seeds' extent; a site on its square at every level in use.
  -- MATERIALIZED keeps the planner from re-planning this into nested loops.
  RETURN QUERY
  WITH seeds AS MATERIALIZED (
    SELECT d.path[1] AS k, d.geom AS g, ST_X(d.geom) AS x, ST_Y(d.geom) AS y
    FROM ST_Dump(v_sites) AS d
  ), cells AS MATERIALIZED (
    SELECT d.path[1] AS c, d.geom AS g,
           greatest(ST_XMin(d.geom), v_x0) AS bx0, least(ST_XMax(d.geom), v_x1) AS bx1,
           greatest(ST_YMin(d.geom), v_y0) AS by0, least(ST_YMax(d.geom), v_y1) AS by1
    FROM ST_Dump(v_cells) AS d
  ), leveled AS MATERIALIZED (
    SELECT c.c, c.g, c.bx0, c.bx1, c.by0, c.by1, v_side / (2::double precision ^ l.lvl) AS s, l.lvl
    FROM cells AS c
    CROSS JOIN LATERAL (
      SELECT greatest(0, least(40, floor(
               ln(v_side / greatest(c.bx1 - c.bx0, c.by1 - c.by0, v_side * 1e-12)) / ln(2.0))::integer)) AS lvl
    ) AS l
    WHERE c.bx0 <= c.bx1 AND c.by0 <= c.by1
  ), cell_keys AS MATERIALIZED (
    SELECT lv.c, lv.g, lv.lvl, i, j
    FROM leveled AS lv,
         generate_series(floor((lv.bx0 - v_x0) / lv.s)::integer, floor((lv.bx1 - v_x0) / lv.s)::integer) AS i,
         generate_series(floor((lv.by0 - v_y0) / lv.s)::integer, floor((lv.by1 - v_y0) / lv.s)::integer) AS j
  ), seed_keys AS MATERIALIZED (
    SELECT sd.k, sd.g, l.lvl, floor((sd.x - v_x0) / l.s)::integer AS i, floor((sd.y - v_y0) / l.s)::integer AS j
    FROM seeds AS sd CROSS JOIN (SELECT DISTINCT lv.lvl, lv.s FROM leveled AS lv) AS l
  ), matched AS (
    SELECT DISTINCT ON (sk.k) sk.k, ck.g
    FROM cell_keys AS ck
    JOIN seed_keys AS sk ON sk.lvl = ck.lvl AND sk.i = ck.i AND sk.j = ck.j
    WHERE ST_Intersects(ck.g, sk.g)
    ORDER BY sk.k, ck.c
  ), seed_sites AS (
    SELECT DISTINCT v_owner[s.k] AS o, v_site_of[s.k] AS site
    FROM generate_subscripts(v_owner, 1) AS s(k)
  ), owned AS (
    SELECT ss.o,
           CASE WHEN count(*) = 1 THEN (array_agg(m.g))[1] ELSE ST_Union(m.g) END AS g
    FROM seed_sites AS ss
    JOIN matched AS m ON m.k = ss.site
    GROUP BY ss.o
  ), cut AS (
    SELECT w.o, CASE WHEN v_cut IS NULL THEN w.g ELSE ST_Intersection(w.g, v_cut) END AS g
    FROM owned AS w
  ), kept AS MATERIALIZED (
    SELECT row_number() OVER (ORDER BY k.o) AS n, k.o, k.g
    FROM cut AS k WHERE ST_Dimension(k.g) = 2 AND NOT ST_IsEmpty(k.g)
  ), back AS (
    SELECT d.path[1] AS n, ST_Collect(d.geom) AS g
    FROM (SELECT ST_Collect(k.g ORDER BY k.n) AS g FROM kept AS k) AS everything
    CROSS JOIN LATERAL ST_Dump(CASE WHEN v_geographic THEN ST_Transform(everything.g, v_proj, p_srid)
                                    ELSE everything.g END) AS d
    GROUP BY d.path[1]
  ), placed AS (
    SELECT k.o,
           CASE WHEN v_box IS NULL THEN ST_CollectionHomogenize(b.g)
                ELSE ST_CollectionExtract(ST_Intersection(ST_CollectionHomogenize(b.g), v_box), 3) END AS g
    FROM back AS b JOIN kept AS k ON k.n = b.n
  )
  SELECT p.o, p.g FROM placed AS p WHERE NOT ST_IsEmpty(p.g) ORDER BY p.o;
END
$$;
