"""Class-mean temporal profiles of the noise-free model, and their plot.

The profiles document the intended separability of the classes: early weeks are
ambiguous (bare soil before planting, maize ≈ cassava), rice separates once its paddies
are flooded, and every class separates by about two thirds of the season.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from cropassets.world.config import CLASSES, WorldConfig, parse_seasons
from cropassets.world.radar import backscatter, to_db
from cropassets.world.reflectance import lswi, mix, ndvi, ndwi
from cropassets.world.world_model import WorldModel, build_model

FEATURES = ("ndvi", "ndwi", "lswi", "vv_db", "vh_db")


def field_series(model: WorldModel, season_index: int, days: np.ndarray) -> dict[str, np.ndarray]:
    """Noise-free features of every parcel on ``days`` (since the season start).

    Returns:
        ``{feature: array (n + 1, T)}`` for :data:`FEATURES` (indices unitless, backscatter
        in dB); row 0 is unused.
    """
    sm = model.seasons[season_index]
    fr = sm.fractions(model.traits, np.asarray(days, dtype=np.float64))
    refl = mix(fr, sm.veg, model.traits.soil_gain)
    sigma = to_db(backscatter(fr, sm.code))
    return {"ndvi": ndvi(refl), "ndwi": ndwi(refl), "lswi": lswi(refl),
            "vv_db": sigma[0], "vh_db": sigma[1]}


def model_profiles(model: WorldModel) -> dict[str, Any]:
    """Area-weighted class means of :data:`FEATURES` at mid-week of every season week.

    Returns:
        ``{season_id: {"weeks": [1..K], "week_start": [ISO dates], "classes":
        {class_name: {feature: [K floats]}}}}``.
    """
    out: dict[str, Any] = {}
    area = model.parcels.area_px.astype(np.float64)
    for sm in model.seasons:
        k = np.arange(1, sm.season.weeks + 1)
        days = 7.0 * (k - 1) + 3.5
        feats = field_series(model, sm.index, days)
        classes = {}
        for c in CLASSES:
            sel = sm.code == c.code
            sel[0] = False
            if not sel.any():
                continue
            wts = area[sel] / area[sel].sum()
            classes[c.name] = {f: (wts @ v[sel]).round(4).tolist() for f, v in feats.items()}
        out[sm.season.id] = {
            "weeks": k.tolist(),
            "week_start": [sm.season.week_start(int(i)).isoformat() for i in k],
            "classes": classes,
        }
    return out


def load_model(world_dir: Path | str) -> WorldModel:
    """Rebuild the model of a generated world from its ``world.json``."""
    manifest = json.loads((Path(world_dir) / "world.json").read_text())
    cfg = WorldConfig(seed=int(manifest["seed"]), size=int(manifest["size"]),
                      tiles=int(manifest["tiles"]), seasons=parse_seasons(manifest["seasons"]))
    return build_model(cfg)


def class_mean_profiles(world_dir: Path | str) -> dict[str, Any]:
    """Class-mean weekly NDVI, NDWI, LSWI, VV and VH (dB) of each season of a world.

    See :func:`model_profiles` for the layout of the result.
    """
    return model_profiles(load_model(world_dir))


def first_week_apart(profiles: dict[str, Any], season: str, a: str, b: str,
                     feature: str = "ndvi", threshold: float = 0.1) -> int | None:
    """First week in which class means of ``feature`` of ``a`` and ``b`` differ > threshold.

    Returns:
        The 1-based week, or None if they never do.
    """
    p = profiles[season]
    diff = np.abs(np.subtract(p["classes"][a][feature], p["classes"][b][feature]))
    hit = np.flatnonzero(diff > threshold)
    return int(p["weeks"][hit[0]]) if hit.size else None


def plot_profiles(world_dir: Path | str, out_png: Path | str,
                  profiles: dict[str, Any] | None = None) -> Path:
    """Plot class-mean NDVI, NDWI and VH (dB) per week, one row per season, to a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    prof = profiles if profiles is not None else class_mean_profiles(world_dir)
    colors = {c.name: c.color for c in CLASSES}
    feats = (("ndvi", "NDVI"), ("ndwi", "NDWI (green−NIR)"), ("vh_db", "S1 VH (dB)"))
    fig, axes = plt.subplots(len(prof), len(feats), figsize=(4.2 * len(feats), 3.0 * len(prof)),
                             squeeze=False, sharex=True)
    for row, (sid, p) in enumerate(prof.items()):
        for col, (f, label) in enumerate(feats):
            ax = axes[row][col]
            for name, v in p["classes"].items():
                ax.plot(p["weeks"], v[f], color=colors[name], label=name, lw=1.8)
            ax.set_title(f"{sid}: {label}", fontsize=10)
            ax.grid(alpha=0.3)
            if row == len(prof) - 1:
                ax.set_xlabel("week of season")
    axes[0][0].legend(fontsize=7, ncol=2)
    fig.tight_layout()
    out = Path(out_png)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


__all__ = ["FEATURES", "class_mean_profiles", "field_series", "first_week_apart",
           "load_model", "model_profiles", "plot_profiles"]
