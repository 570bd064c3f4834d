"""The numeric and IO core: plain functions on numpy / xarray / rasterio / torch, no Dagster.

Packages by concept, each with a curated public face (``__all__``):

- ``stac``: finding and loading scenes (STAC search, catalog naming, item metadata, the
  offline STAC API server);
- ``cube``: weekly data cubes (indices, cloud masks, composites, observation coverage);
- ``timeseries``: per-pixel series (time axis, gap filling, Butterworth smoothing, season
  series, Start of Season); the CWT scalograms are in ``cropassets.ml``;
- ``reference``: reference labels (label-file import, field rasters, sampling, training series);
- ``publish``: published products (COGs, crop products, week layers, product STAC, QGIS);
- ``quality``: the measurements behind the asset checks;
- ``objstore``: the data root on object storage (``s3://bucket/prefix``): path-like
  locations, obstore requests, Zarr versions published by a pointer, GDAL ``/vsis3/``.

Shared basics at this level: ``storage`` (atomic writes, Zarr), ``seasons``, ``tiles`` (the
tile grid file), ``region``, ``legend``, ``season_progress``, the typed on-disk records
``knee_record`` and ``week_model_record`` (with ``json_records``, what they share; the week
manifest's record is ``publish.manifest_record``), ``plots``.
Imports run downward only: nothing here imports ``cropassets.ml``, the assets or Dagster.
"""
