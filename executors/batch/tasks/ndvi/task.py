"""NDVI = (NIR - red) / (NIR + red) of a multiband raster, as a float32 GeoTIFF (rasterio)."""

import numpy as np
import rasterio

NODATA = -9999.0


def run(inputs, ctx):
    path = inputs["raster"]["path"]
    red_band, nir_band = int(inputs.get("red_band") or 1), int(inputs.get("nir_band") or 2)
    try:
        src = rasterio.open(path)
    except rasterio.errors.RasterioIOError as exc:
        raise ctx.InvalidInput(f"the raster input is not a readable raster ({exc})") from exc
    with src:
        for band in (red_band, nir_band):
            if not 1 <= band <= src.count:
                raise ctx.InvalidInput(f"band {band} does not exist (the raster has {src.count})")
        red = src.read(red_band, masked=True).astype("float64")
        nir = src.read(nir_band, masked=True).astype("float64")
        profile = src.profile
    ctx.progress(40, f"read {src.width}x{src.height} pixels")
    total = nir + red
    invalid = np.ma.getmaskarray(red) | np.ma.getmaskarray(nir) | (total.filled(0) == 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        ndvi = (nir.filled(0) - red.filled(0)) / total.filled(1)
    out = np.where(invalid, NODATA, ndvi).astype("float32")
    profile.update(driver="GTiff", count=1, dtype="float32", nodata=NODATA, compress="deflate")
    profile.pop("blockxsize", None)
    profile.pop("blockysize", None)
    profile.pop("tiled", None)
    with rasterio.open(ctx.workdir / "ndvi.tif", "w", **profile) as dst:
        dst.write(out, 1)
    ctx.message("info", f"{int(invalid.sum())} nodata pixels")
    return {"ndvi": ctx.file_output("ndvi.tif", "image/tiff; application=geotiff")}
