-- honua_gp shared helpers, version 1.
--
-- Installed by executors/migrations/0002_honua_common_v1.py with search_path pinned to
-- pg_catalog, the PostGIS schema and pg_temp. The helpers carry no SET clause (so the
-- planner may inline them where their arguments are cheap); called from the public
-- functions they resolve the PostGIS names through those functions' pinned search_path.

-- Whether an SRID is a geographic (lon/lat) system; raises 22023 for an SRID that
-- spatial_ref_sys does not know. 0 (unknown) counts as planar.
CREATE OR REPLACE FUNCTION honua_gp._is_geographic(p_srid integer)
RETURNS boolean
LANGUAGE plpgsql STABLE PARALLEL SAFE
AS $$
DECLARE
  v_proj text;
BEGIN
  IF p_srid IS NULL OR p_srid = 0 THEN
    RETURN false;
  END IF;
  SELECT s.proj4text INTO v_proj FROM spatial_ref_sys s WHERE s.srid = p_srid;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'unknown spatial reference EPSG:%', p_srid USING ERRCODE = '22023';
  END IF;
  RETURN v_proj ~ '\+proj=(longlat|latlong|lonlat|latlon)\M';
END
$$;

-- The conformal metric CRS of a lon/lat position: its UTM zone (WGS 84), or universal
-- polar stereographic beyond 84N / 80S.
CREATE OR REPLACE FUNCTION honua_gp._local_srid(p_lon double precision, p_lat double precision)
RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
  SELECT CASE
    WHEN p_lat >= 84 THEN 32661
    WHEN p_lat < -80 THEN 32761
    ELSE CASE WHEN p_lat >= 0 THEN 32600 ELSE 32700 END
         + least(60, 1 + floor(((p_lon + 180) - 360 * floor((p_lon + 180) / 360)) / 6)::integer)
  END
$$;

-- Point scale factor of the conformal CRS p_local at the lon/lat point p_at: the grid
-- length of a 100 m geodesic step. A ground distance d is d * k in the grid.
CREATE OR REPLACE FUNCTION honua_gp._scale_at(p_at geometry, p_local integer)
RETURNS double precision
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
  SELECT ST_Distance(
           ST_Transform(p_at, p_local),
           ST_Transform(ST_Project(p_at::geography, 100.0, pi() / 2)::geometry, p_local)
         ) / 100.0
$$;

-- A result that left [-180, 180] through the inverse projection wraps around: if it is
-- more than half the globe wide while its source is not, shift it to be continuous
-- across 180 and split it there into a multi-part geometry within [-180, 180].
CREATE OR REPLACE FUNCTION honua_gp._wrap_dateline(p_geom geometry, p_source geometry)
RETURNS geometry
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
  SELECT CASE
    WHEN ST_IsEmpty(p_geom) OR ST_XMax(p_geom) - ST_XMin(p_geom) <= 180
         OR ST_XMax(p_source) - ST_XMin(p_source) > 180 THEN p_geom
    ELSE ST_Union(
           ST_Intersection(ST_ShiftLongitude(p_geom),
                           ST_MakeEnvelope(-180, -90, 180, 90, ST_SRID(p_geom))),
           ST_Translate(ST_Intersection(ST_ShiftLongitude(p_geom),
                                        ST_MakeEnvelope(180, -90, 540, 90, ST_SRID(p_geom))),
                        -360, 0))
  END
$$;

-- An azimuthal equidistant projection (metres) centred on a lon/lat collection: circular
-- mean of the longitudes (antimeridian-safe), mean latitude. Distances from the centre
-- are exact; transverse scale error is ~(r/R)^2/6 (0.4 % at 1,000 km).
CREATE OR REPLACE FUNCTION honua_gp._aeqd_for(p_geoms geometry)
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
  SELECT format(
           '+proj=aeqd +lat_0=%s +lon_0=%s +datum=WGS84 +units=m +no_defs',
           round(avg(ST_Y(c.p))::numeric, 8),
           round(degrees(atan2(avg(sin(radians(ST_X(c.p)))), avg(cos(radians(ST_X(c.p))))))::numeric, 8))
  FROM (SELECT ST_Centroid(d.geom) AS p FROM ST_Dump(p_geoms) AS d WHERE NOT ST_IsEmpty(d.geom)) AS c
$$;
