"""Processing settings shared by every asset that builds series (one source of truth).

Training at sequence length k and inference at week k must apply identical processing, so
these parameters live in one resource and are stored with every checkpoint.
"""

from __future__ import annotations

from dagster import ConfigurableResource
from pydantic import Field, field_validator

from cropassets.core.cube.indices import DEFAULT_FEATURES, check_features


class SeriesSettings(ConfigurableResource):
    """Compositing, smoothing and SOS parameters."""

    features: list[str] = Field(default=list(DEFAULT_FEATURES),
                                description="features per week, e.g. ndvi, lswi, vv, vh, vh_vv")
    cloud_buffer_px: int = Field(default=1, ge=0, description="buffer around SCL-masked pixels")
    lee_window: int = Field(default=5, ge=1, description="Lee speckle filter window, pixels")
    s1_enl: float = Field(default=4.4, gt=0, description="equivalent number of looks of S1")
    cutoff: float = Field(default=0.2, gt=0, lt=0.5,
                          description="Butterworth low-pass cutoff, cycles per week")
    order: int = Field(default=3, ge=1, description="Butterworth order")
    sos_fraction: float = Field(default=0.2, gt=0, lt=1,
                                description="SOS = first crossing of base + fraction*amplitude")
    sos_min_amplitude: float = Field(default=0.15, gt=0,
                                     description="min NDVI rise for a season to have started")

    chunk: int = Field(default=1024, ge=64, description="block edge (pixels) of chunked array work")
    sos_radar_min_amplitude_db: float = Field(
        default=3.0, gt=0, description="min VH rise (dB) for the radar SOS where clouded out")

    @field_validator("features")
    @classmethod
    def _producible(cls, value: list[str]) -> list[str]:
        return list(check_features(value))
