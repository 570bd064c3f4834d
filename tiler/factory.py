"""One titiler-mosaic factory per served layer, with every input fixed on the server.

The stock ``MosaicTilerFactory`` is composed with dependencies that map the ``{week}`` path
segment to the week's published MosaicJSON (:class:`~tiler.catalog.Catalog`) and fix the
band, value range, colormap and resampling of the layer; no query parameter of the stock
factory (``url``, ``bidx``, ``expression``, ``colormap``, ``rescale``, ...) is accepted.
Only the tile and TileJSON routes are registered: ``/info``, ``/assets`` and the viewer
would reveal file paths. Each layer has two factories: ``/layers/{layer}/{week}`` and the
versioned ``/layers/{layer}/{week}/v/{version}``, which answers 404 unless ``{version}`` is
the week's current version (:meth:`~tiler.catalog.Catalog.version`). TileJSON always hands
out the versioned tile URL.
"""

# no `from __future__ import annotations`: FastAPI must evaluate the route annotations,
# which refer to the factory instance.
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import morecantile
from attrs import define, field
from cogeo_mosaic.backends import MosaicBackend
from cogeo_mosaic.mosaic import MosaicJSON
from fastapi import APIRouter, Depends, HTTPException, Path
from morecantile.defaults import TileMatrixSets
from rio_tiler.errors import NoAssetFoundError
from rio_tiler.mosaic.methods import PixelSelectionMethod
from rio_tiler.mosaic.methods.base import MosaicMethodBase
from rio_tiler.types import ColorMapType
from starlette.requests import Request
from starlette.routing import Route
from titiler.core.dependencies import (
    BidxParams,
    DatasetParams,
    DefaultDependency,
    ImageRenderingParams,
    TileParams,
)
from titiler.core.models.mapbox import TileJSON
from titiler.core.resources.enums import ImageType
from titiler.core.utils import render_image
from titiler.mosaic.factory import MosaicTilerFactory

from cropassets.core.objstore import ObjPath
from tiler import render
from tiler.catalog import Catalog

TMS_ID = "WebMercatorQuad"
WEB_MERCATOR = morecantile.tms.get(TMS_ID)
ONLY_WEB_MERCATOR = TileMatrixSets({TMS_ID: WEB_MERCATOR})
GDAL_ENV = {"GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR"}
"""Open only the COG itself: no directory listing, no sidecar files."""

WeekPath = Annotated[str, Path(description="Week key (YYYY-MM-DD) listed by /api/weeks.")]
VersionPath = Annotated[str, Path(description="The week's current version, as in the URLs "
                                              "of /api/weeks (a hash of its manifest).")]


def tile_template(base_url: str, layer: str, week: str, version: str) -> str:
    """Versioned XYZ template of ``layer`` in ``week`` (``base_url`` ends with ``/``)."""
    return (f"{base_url}layers/{layer}/{week}/v/{version}/tiles/{TMS_ID}/"
            "{z}/{x}/{y}.png")


def tilejson_url(base_url: str, layer: str, week: str, version: str) -> str:
    """Versioned TileJSON URL of ``layer`` in ``week`` (``base_url`` ends with ``/``)."""
    return f"{base_url}layers/{layer}/{week}/v/{version}/{TMS_ID}/tilejson.json"


@dataclass
class MosaicDefParams(DefaultDependency):
    """Backend options: the checked MosaicJSON (so the backend reads no file), its zooms."""

    mosaic_def: MosaicJSON
    minzoom: int
    maxzoom: int


def render_png(image: Any, output_format: ImageType | None = None, **kwargs: Any
               ) -> tuple[bytes, str]:
    """Render like titiler's ``render_image``; PNG unless the route asked for another format."""
    return render_image(image, output_format=output_format or ImageType.png, **kwargs)


@define(kw_only=True)
class PublishedLayerFactory(MosaicTilerFactory):
    """MosaicTilerFactory limited to ``/tiles/...`` and ``/{tms}/tilejson.json``."""

    layer: str = field()
    version_dependency: Callable[..., Any] = field()

    def register_routes(self) -> None:
        """Register the tile and TileJSON routes only (the one without format: undocumented)."""
        self.tile()
        self.tilejson()
        for route in self.router.routes:
            if isinstance(route, Route) and route.path.endswith("/{z}/{x}/{y}"):
                route.include_in_schema = False

    def tilejson(self) -> None:
        """TileJSON 3.0 whose template is this factory's PNG tile route."""

        @self.router.get(
            "/{tileMatrixSetId}/tilejson.json",
            response_model=TileJSON,
            response_model_exclude_none=True,
            operation_id=f"{self.operation_prefix}getTileJSON",
        )
        def tilejson(
            request: Request,
            tileMatrixSetId: Annotated[Literal[tuple(self.supported_tms.list())],  # type: ignore
                                       Path(description="Tile matrix set (WebMercatorQuad).")],
            src_path: Annotated[str, Depends(self.path_dependency)],
            backend_params: Annotated[MosaicDefParams, Depends(self.backend_dependency)],
            version: Annotated[str, Depends(self.version_dependency)],
        ) -> dict[str, Any]:
            """TileJSON of the layer in this week; its tile URL carries the week's version."""
            week = request.path_params.get("week", "")
            url = tile_template(str(request.base_url), self.layer, week, version)
            tms = self.supported_tms.get(tileMatrixSetId)
            with self.backend(src_path, tms=tms, **backend_params.as_dict()) as src:
                bounds = src.get_geographic_bounds(tms.rasterio_geographic_crs)
                minzoom, maxzoom = src.minzoom, src.maxzoom
            return {"tilejson": "3.0.0", "name": f"{self.layer} {week}", "scheme": "xyz",
                    "tiles": [url], "bounds": list(bounds), "minzoom": minzoom,
                    "maxzoom": maxzoom, "attribution": "cropassets"}


def layer_factory(layer: str, catalog: Catalog, versioned: bool = False
                  ) -> PublishedLayerFactory:
    """The factory serving ``layer`` under ``/layers/{layer}/{week}`` (or ``.../v/{version}``).

    The dependencies are ``async``: FastAPI runs sync ones in its thread pool, one thread
    hop each (about 25 per tile), which cost a third of a tile's time. They only look up
    cached manifests (a ``stat`` per file) or return constants.
    """
    style = render.STYLES[layer]

    async def week_mosaic(week: WeekPath, request: Request) -> str:
        mosaic = catalog.mosaic(layer, week)
        z, tms = request.path_params.get("z", ""), request.path_params.get("tileMatrixSetId")
        if tms == TMS_ID and z.isdigit() and int(z) < mosaic.minzoom:  # 204, nothing read
            raise NoAssetFoundError(f"{layer} tiles start at zoom {mosaic.minzoom}")
        # a name only: the backend gets the checked document (mosaic_def) and reads nothing;
        # on object storage the /vsis3/ form keeps cogeo-mosaic off its S3 (boto3) backend
        path = mosaic.path
        return path.gdal() if isinstance(path, ObjPath) else str(path)

    async def mosaic_def(week: WeekPath) -> MosaicDefParams:
        mosaic = catalog.mosaic(layer, week)
        return MosaicDefParams(mosaic_def=mosaic.doc, minzoom=mosaic.minzoom,
                               maxzoom=mosaic.maxzoom)

    async def layer_colormap(week: WeekPath) -> ColorMapType:
        return render.colormap(layer, catalog.layer_week(layer, week))

    async def rendering(week: WeekPath) -> ImageRenderingParams:
        rng = render.value_range(layer, catalog.layer_week(layer, week))
        return ImageRenderingParams(rescale=[f"{rng[0]},{rng[1]}"] if rng else None,
                                    color_formula=None, add_mask=True)

    async def band() -> BidxParams:
        return BidxParams(indexes=[style.band])

    async def nearest() -> DatasetParams:
        return DatasetParams(resampling_method="nearest", reproject_method="nearest")

    async def no_options() -> DefaultDependency:
        return DefaultDependency()

    async def no_tile_options() -> TileParams:
        return TileParams()

    async def first_valid() -> type[MosaicMethodBase]:
        return PixelSelectionMethod.first.value

    async def no_algorithm() -> None:
        return None

    async def gdal_env() -> dict[str, str]:
        return dict(GDAL_ENV)

    async def current_version(week: WeekPath) -> str:
        return catalog.layer_version(layer, week)

    async def check_version(week: WeekPath, version: VersionPath) -> None:
        """404 unless ``version`` is the week's current one (republished weeks change it)."""
        current = catalog.layer_version(layer, week)
        if version != current:
            raise HTTPException(404, f"version {version[:40]!r} of week {week} is not its "
                                     f"current version ({current}): the week was republished "
                                     "or the version is wrong; take the URLs from /api/weeks")

    router = APIRouter(dependencies=[Depends(check_version)] if versioned else [])
    return PublishedLayerFactory(
        name=f"{layer}.v" if versioned else layer,  # operation ids: crop.getTile, crop.v.getTile
        layer=layer,
        router=router,
        router_prefix=f"/layers/{layer}/{{week}}" + ("/v/{version}" if versioned else ""),
        version_dependency=current_version,
        # titiler annotates type[BaseBackend] but only calls it; cogeo-mosaic's
        # MosaicBackend is the function that picks the backend class from the URL
        backend=MosaicBackend,  # type: ignore[arg-type]
        path_dependency=week_mosaic,
        backend_dependency=mosaic_def,  # type: ignore[arg-type]
        reader_dependency=no_options,  # type: ignore[arg-type]
        assets_accessor_dependency=no_options,  # type: ignore[arg-type]
        layer_dependency=band,  # type: ignore[arg-type]
        dataset_dependency=nearest,  # type: ignore[arg-type]
        tile_dependency=no_tile_options,  # type: ignore[arg-type]
        pixel_selection_dependency=first_valid,  # type: ignore[arg-type]
        process_dependency=no_algorithm,  # type: ignore[arg-type]
        colormap_dependency=layer_colormap,  # type: ignore[arg-type]
        render_dependency=rendering,  # type: ignore[arg-type]
        render_func=render_png,
        environment_dependency=gdal_env,  # type: ignore[arg-type]
        supported_tms=ONLY_WEB_MERCATOR,
        add_viewer=False,
    )
