"""Parcel layout: farm fields, forest patches, villages, ponds and a canal.

The simulation grid is cut by a binary space partition into convex polygons: first a canal
(a straight band across the region), then blocks of 15–60 ha that become forest, village
or farmland, then farmland into fields of 0.5–5 ha (a few become ponds) and villages into
compounds. Cuts run across the polygon's long axis with a few degrees of jitter, so fields
are slightly irregular quadrilaterals. Polygons are rasterised (pixel-centre rule) into a
field-id raster in which every pixel belongs to exactly one parcel.

Polygons are kept in sim-grid pixel coordinates (x = column, y = row, corner convention).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from affine import Affine
from rasterio import features
from scipy import ndimage

from cropassets.world.config import BUILT, CROP_CODES, CROP_WEIGHTS, FOREST, WATER

PX_PER_HA = 100.0  # 10 m pixels
FOREST_SHARE = 0.09  # of the area
BUILT_SHARE = 0.06
POND_SHARE = 0.035
ROTATION_SHARE = 0.15  # of crop fields change class from one season to the next

# parcel kinds (season-independent); crops get their class per season
KIND_CROP, KIND_FOREST, KIND_WATER, KIND_BUILT = 0, FOREST, WATER, BUILT


def polygon_area(p: np.ndarray) -> float:
    """Area of a simple polygon (n, 2) by the shoelace formula, px²."""
    x, y = p[:, 0], p[:, 1]
    s = x[:-1] @ y[1:] - y[:-1] @ x[1:] + x[-1] * y[0] - y[-1] * x[0]
    return 0.5 * abs(float(s))


def clip_halfplane(p: np.ndarray, q: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Part of convex polygon ``p`` (n, 2) where (x - q)·n >= 0 (Sutherland–Hodgman)."""
    s = (p - q) @ n
    out = []
    k = len(p)
    for i in range(k):
        a, b = p[i], p[(i + 1) % k]
        sa, sb = s[i], s[(i + 1) % k]
        if sa >= 0:
            out.append(a)
        if (sa >= 0) != (sb >= 0):
            t = sa / (sa - sb)
            out.append(a + t * (b - a))
    return np.array(out, dtype=np.float64).reshape(-1, 2)


def principal_angle(p: np.ndarray) -> float:
    """Direction (radians) of the long axis of a polygon's vertex cloud."""
    d = p - p.mean(axis=0)
    sxx, syy, sxy = float(d[:, 0] @ d[:, 0]), float(d[:, 1] @ d[:, 1]), float(d[:, 0] @ d[:, 1])
    return 0.5 * float(np.arctan2(2.0 * sxy, sxx - syy))


def _split(p: np.ndarray, rng: np.random.Generator, axis: float | None,
           jitter_deg: float, frac: tuple[float, float] = (0.35, 0.65)
           ) -> tuple[np.ndarray, np.ndarray]:
    """Cut a convex polygon across its long axis at a random fraction of its length.

    With ``axis`` given, the cut runs across whichever of ``axis`` and ``axis + 90°`` the
    polygon is longer along, so the pieces of a block share its orientation.
    """
    c = p.mean(axis=0)
    d = p - c
    if axis is None:
        ang = principal_angle(p)
    else:
        extents = []
        for a in (axis, axis + np.pi / 2):
            proj = d @ np.array([np.cos(a), np.sin(a)])
            extents.append(proj.max() - proj.min())
        ang = axis if extents[0] >= extents[1] else axis + np.pi / 2
    ang += np.deg2rad(rng.normal(0.0, jitter_deg))
    u = np.array([np.cos(ang), np.sin(ang)])
    proj = d @ u
    t = proj.min() + rng.uniform(*frac) * (proj.max() - proj.min())
    q = c + t * u
    return clip_halfplane(p, q, -u), clip_halfplane(p, q, u)


def _partition(p: np.ndarray, rng: np.random.Generator, min_px: float,
               max_px: tuple[float, float], aligned: bool = False) -> list[np.ndarray]:
    """Recursively split ``p`` until each piece is below a random target in ``max_px``.

    A piece smaller than ``2.2 * min_px`` is never split, so pieces stay >= ~``min_px``.
    With ``aligned``, every cut follows the orientation of ``p`` (near-rectangular fields).
    """
    axis = principal_angle(p) if aligned else None
    jitter = 2.0 if aligned else 6.0
    out: list[np.ndarray] = []
    stack = [p]
    while stack:
        poly = stack.pop()
        area = polygon_area(poly)
        target = np.exp(rng.uniform(np.log(max_px[0]), np.log(max_px[1])))
        if area <= target or area < 2.2 * min_px:
            out.append(poly)
            continue
        a, b = _split(poly, rng, axis, jitter)
        stack.extend([b, a])
    return out


@dataclass
class ParcelLayout:
    """The parcels of a world.

    Attributes:
        fid: Field-id raster on the sim grid, dims (y, x), uint32, ids 1..n (no zeros).
        polygons: Polygon of parcel ``i`` at index ``i - 1``, (k, 2) sim-pixel coords.
        kind: Per parcel, index = field id (index 0 unused): 0 crop, else the fixed
            non-crop class code (5 forest, 6 water, 7 built-up); shape (n + 1,).
        block: Farm block of each parcel (crop class preference is shared by a block).
        area_px: Pixel count of each parcel in the raster, shape (n + 1,).
    """

    fid: np.ndarray
    polygons: list[np.ndarray]
    kind: np.ndarray
    block: np.ndarray
    area_px: np.ndarray

    @property
    def n(self) -> int:
        """Number of parcels."""
        return len(self.polygons)


def build_parcels(shape: tuple[int, int], rng: np.random.Generator) -> ParcelLayout:
    """Lay out the parcels on a sim grid of ``shape`` (rows, cols)."""
    h, w = shape
    region = np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float64)
    # a canal: straight band 30-50 m wide crossing the grid west to east
    ang = np.deg2rad(rng.uniform(-12, 12))
    nrm = np.array([-np.sin(ang), np.cos(ang)])
    q = np.array([w / 2, rng.uniform(0.3, 0.7) * h])
    half = rng.uniform(1.5, 2.5)
    north = clip_halfplane(region, q - half * nrm, -nrm)
    south = clip_halfplane(region, q + half * nrm, nrm)
    canal = clip_halfplane(clip_halfplane(region, q - half * nrm, nrm), q + half * nrm, -nrm)

    blocks = [b for part in (north, south) if len(part) >= 3
              for b in _partition(part, rng, 8 * PX_PER_HA, (15 * PX_PER_HA, 60 * PX_PER_HA))]
    total = float(h * w)
    order = rng.permutation(len(blocks))
    block_kind = np.full(len(blocks), KIND_CROP)
    forest = built = 0.0
    for i in order:
        a = polygon_area(blocks[i])
        if forest < FOREST_SHARE * total:
            block_kind[i] = KIND_FOREST
            forest += a
        elif built < BUILT_SHARE * total and a < 40 * PX_PER_HA:
            block_kind[i] = KIND_BUILT
            built += a

    polys: list[np.ndarray] = [canal]
    kinds: list[int] = [KIND_WATER]
    blk: list[int] = [-1]
    for i, b in enumerate(blocks):
        if block_kind[i] == KIND_FOREST:
            pieces = _partition(b, rng, 10 * PX_PER_HA, (20 * PX_PER_HA, 40 * PX_PER_HA))
        elif block_kind[i] == KIND_BUILT:
            pieces = _partition(b, rng, 1 * PX_PER_HA, (2 * PX_PER_HA, 5 * PX_PER_HA),
                                aligned=True)
        else:
            pieces = _partition(b, rng, 0.5 * PX_PER_HA, (1.5 * PX_PER_HA, 6 * PX_PER_HA),
                                aligned=True)
        polys.extend(pieces)
        kinds.extend([int(block_kind[i])] * len(pieces))
        blk.extend([i] * len(pieces))
    kind = np.array(kinds)
    # ponds: small farm fields turned into water bodies
    small = np.flatnonzero((kind == KIND_CROP)
                           & (np.array([polygon_area(p) for p in polys]) < 2.5 * PX_PER_HA))
    pond_area = 0.0
    for i in rng.permutation(small):
        if pond_area >= POND_SHARE * total:
            break
        kind[i] = KIND_WATER
        pond_area += polygon_area(polys[i])

    fid = _rasterize(polys, shape)
    present = np.zeros(len(polys) + 1, dtype=bool)
    present[np.unique(fid)] = True
    keep = np.flatnonzero(present[1:])  # parcels that own at least one pixel centre
    remap = np.zeros(len(polys) + 1, dtype=np.uint32)
    remap[keep + 1] = np.arange(1, len(keep) + 1, dtype=np.uint32)
    fid = remap[fid]
    polys = [polys[i] for i in keep]
    kind = np.concatenate([[-1], kind[keep]])
    block = np.concatenate([[-1], np.array(blk)[keep]])
    area_px = np.bincount(fid.ravel(), minlength=len(polys) + 1)
    return ParcelLayout(fid=fid, polygons=polys, kind=kind, block=block, area_px=area_px)


def _rasterize(polys: list[np.ndarray], shape: tuple[int, int]) -> np.ndarray:
    """Burn polygon ``i`` as value ``i + 1``; pixels on shared edges go to a neighbour."""
    shapes = (({"type": "Polygon", "coordinates": [np.vstack([p, p[:1]]).tolist()]}, i + 1)
              for i, p in enumerate(polys))
    fid = features.rasterize(shapes, out_shape=shape, transform=Affine.identity(), fill=0,
                             dtype="uint32")
    hole = fid == 0
    if hole.any():
        idx = ndimage.distance_transform_edt(hole, return_distances=False, return_indices=True)
        fid = fid[tuple(idx)]
    return fid


def assign_crops(layout: ParcelLayout, n_seasons: int, rng: np.random.Generator) -> np.ndarray:
    """Class code of every parcel in every season.

    The first season draws crops with the :data:`CROP_WEIGHTS` mix, half of the fields of a
    farm block following the block's preferred crop; each later season rotates
    :data:`ROTATION_SHARE` of the crop fields to another crop.

    Returns:
        int array (n_seasons, n + 1): class code, index = field id (column 0 unused = 0).
    """
    codes = np.array(CROP_CODES)
    p = np.array([CROP_WEIGHTS[c] for c in CROP_CODES])
    p = p / p.sum()
    n = layout.n
    crop = layout.kind == KIND_CROP
    crop[0] = False
    blocks = np.unique(layout.block[crop])
    pref = dict(zip(blocks.tolist(), rng.choice(codes, size=len(blocks), p=p).tolist(),
                    strict=True))
    first = np.where(layout.kind > 0, layout.kind, 0).astype(np.int64)
    follow = rng.random(n + 1) < 0.5
    drawn = rng.choice(codes, size=n + 1, p=p)
    for i in np.flatnonzero(crop):
        first[i] = pref[int(layout.block[i])] if follow[i] else drawn[i]
    out = [first]
    crop_ids = np.flatnonzero(crop)
    for _ in range(1, n_seasons):
        cur = out[-1].copy()
        k = int(round(ROTATION_SHARE * len(crop_ids)))
        for i in rng.choice(crop_ids, size=k, replace=False):
            others = codes[codes != cur[i]]
            po = p[codes != cur[i]]
            cur[i] = rng.choice(others, p=po / po.sum())
        out.append(cur)
    arr = np.stack(out)
    arr[:, 0] = 0
    return arr


__all__ = ["ParcelLayout", "assign_crops", "build_parcels", "clip_halfplane", "polygon_area"]
