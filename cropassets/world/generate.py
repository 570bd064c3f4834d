"""Generate a synthetic Sentinel world on disk (see docs/CONTRACTS.md for the layout).

``generate_world`` is idempotent: when ``world.json`` already describes a complete world
with the same parameters it returns at once. ``world.json`` is written last, so a partly
written world is never taken for a complete one; a partial world, or one generated with
other parameters, is regenerated (its ``scenes/``, ``stac/`` and ``labels/`` folders are
replaced).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from cropassets.world import catalog_items as si
from cropassets.world import sentinel1 as s1
from cropassets.world import sentinel2 as s2
from cropassets.world.config import (
    CLASSES,
    EPSG,
    GENERATOR_VERSION,
    NEIGHBOUR_EPSG,
    Season,
    WorldConfig,
    parse_seasons,
)
from cropassets.world.reference_truth import write_json, write_labels
from cropassets.world.world_model import WorldModel, build_model

Progress = Callable[[int, int, str], None]
OWNED = ("scenes", "stac", "labels")  # folders the generator replaces when regenerating
MANIFEST = "world.json"

_MODEL: WorldModel | None = None  # the model inside a worker process


def _init_worker(model: WorldModel) -> None:
    global _MODEL
    _MODEL = model


def _write_scene(scene: s2.S2Scene | s1.S1Scene, root: Path,
                 model: WorldModel | None = None) -> dict[str, Any]:
    m = model if model is not None else _MODEL
    if m is None:
        raise RuntimeError("worker has no world model")
    if isinstance(scene, s2.S2Scene):
        return s2.write_scene(m, scene, root)
    return s1.write_scene(m, scene, root)


def is_complete(out: Path, config: WorldConfig) -> bool:
    """Whether ``out`` holds a complete world generated with ``config``."""
    path = Path(out) / MANIFEST
    if not path.is_file():
        return False
    try:
        manifest = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return False
    ident = config.identity()
    return bool(manifest.get("complete")) and all(manifest.get(k) == v for k, v in ident.items())


def _default_workers(config: WorldConfig) -> int:
    if config.size * config.size * config.tiles < 400_000:
        return 1
    return max(1, min(4, os.cpu_count() or 1))


def generate_world(out: Path | str, seed: int = 42, size: int = 512, tiles: int = 4,
                   seasons: Iterable[Season | Mapping[str, Any]] | None = None,
                   progress: Progress | None = None, workers: int | None = None) -> Path:
    """Generate (or confirm) a synthetic Sentinel-1/2 world in ``out``.

    Args:
        out: World folder (created if missing).
        seed: Random seed; the same parameters always give identical files.
        size: Tile edge in 10 m pixels (even, >= 32; a Sentinel-2 tile is 10980).
        tiles: Number of tiles, laid out in ceil(sqrt(tiles)) columns.
        seasons: Season dicts (``id, start, weeks, role``) or :class:`Season`; default
            reference "2024" from 2024-05-06 and current "2025" from 2025-05-05, 28 weeks.
        progress: Called as ``progress(done, total, message)`` as work completes.
        workers: Processes rendering scenes (default: 1 for small worlds, else up to 4).

    Returns:
        The absolute world folder.
    """
    out = Path(out).resolve()
    config = WorldConfig(seed=seed, size=size, tiles=tiles, seasons=parse_seasons(seasons))

    def report(done: int, total: int, message: str) -> None:
        if progress is not None:
            progress(done, total, message)

    if is_complete(out, config):
        report(1, 1, f"world in {out} is complete and up to date")
        return out
    out.mkdir(parents=True, exist_ok=True)
    (out / MANIFEST).unlink(missing_ok=True)
    for name in OWNED:
        shutil.rmtree(out / name, ignore_errors=True)

    model = build_model(config)
    s2_scenes = s2.plan_scenes(model)
    s1_scenes = s1.plan_scenes(model)
    scenes: list[s2.S2Scene | s1.S1Scene] = [*s2_scenes, *s1_scenes]
    total = len(scenes) + 3
    done = 1
    report(done, total, f"world model: {model.parcels.n} parcels, {len(s2_scenes)} S2 and "
                        f"{len(s1_scenes)} S1 scenes to render")
    write_json(out / "tiles.json", {"tiles": [t.to_dict() for t in model.layout.tiles]})
    write_json(out / "seasons.json", {"seasons": [s.to_dict() for s in config.seasons]})

    items: list[dict[str, Any] | None] = [None] * len(scenes)
    n_workers = workers if workers is not None else _default_workers(config)
    if n_workers <= 1:
        for i, scene in enumerate(scenes):
            items[i] = _write_scene(scene, out, model)
            done += 1
            report(done, total, f"wrote {items[i]['id']}")  # type: ignore[index]
    else:
        with ProcessPoolExecutor(max_workers=n_workers, mp_context=get_context("spawn"),
                                 initializer=_init_worker, initargs=(model,)) as pool:
            futures = {pool.submit(_write_scene, scene, out): i for i, scene in enumerate(scenes)}
            for fut in as_completed(futures):
                i = futures[fut]
                items[i] = fut.result()
                done += 1
                report(done, total, f"wrote {items[i]['id']}")  # type: ignore[index]

    s2_items = [it for it in items[: len(s2_scenes)] if it is not None]
    s1_items = [it for it in items[len(s2_scenes):] if it is not None]
    _write_catalog(out, s2_items, s1_items)
    done += 1
    report(done, total, "wrote STAC catalog")
    label_counts = write_labels(model, out)
    done += 1
    report(done, total, "wrote labels")

    manifest = {
        "generator": "cropassets.world",
        "complete": True,
        **config.identity(),
        "crs": f"EPSG:{EPSG}",
        "resolution": model.layout.region.res,
        "region_bounds": list(model.layout.region.bounds),
        "tile_ids": [t.id for t in model.layout.tiles],
        "classes": [c.to_dict() for c in CLASSES],
        "counts": {
            "parcels": model.parcels.n,
            **label_counts,
            "items": {si.S2_COLLECTION: len(s2_items), si.S1_COLLECTION: len(s1_items)},
            "s2_items_epsg": {str(e): sum(it["properties"]["proj:epsg"] == e for it in s2_items)
                              for e in (EPSG, NEIGHBOUR_EPSG)},
        },
        "files": {"tiles": "tiles.json", "seasons": "seasons.json",
                  "collections": "stac/collections.json", "items": "stac/items",
                  "labels": "labels"},
    }
    write_json(out / MANIFEST, manifest)
    done += 1
    report(done, total, f"world complete in {out}")
    return out


def _write_catalog(out: Path, s2_items: list[dict[str, Any]],
                   s1_items: list[dict[str, Any]]) -> None:
    stac = out / "stac"
    for coll, its in ((si.S2_COLLECTION, s2_items), (si.S1_COLLECTION, s1_items)):
        its = sorted(its, key=lambda it: (it["properties"]["datetime"], it["id"]))
        path = stac / "items" / f"{coll}.ndjson"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text("".join(json.dumps(it, separators=(",", ":")) + "\n" for it in its))
        os.replace(tmp, path)
    write_json(stac / "collections.json",
               {"collections": [si.s2_collection(s2_items), si.s1_collection(s1_items)]})


__all__ = ["generate_world", "is_complete", "GENERATOR_VERSION"]
