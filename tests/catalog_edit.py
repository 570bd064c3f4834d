"""Edit a demo-world STAC catalog in place: withhold a week's items, then publish them.

This is how new scenes "arrive" in tests: the items acquired in a week are moved out of
``stac/items/*.ndjson`` into a side file, and moved back later; the served stac-geoparquet
is rebuilt (atomically) so a running STAC API sees the change on its next search.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from pathlib import Path

from cropassets.core.stac.api_catalog import build_api_catalog


def _in_week(item: dict, start: date) -> bool:
    t = datetime.fromisoformat(item["properties"]["datetime"].replace("Z", "+00:00")).date()
    return start <= t < start + timedelta(days=7)


def withhold_week(stac_dir: Path, week_start: date) -> int:
    """Move the items acquired in the week starting ``week_start`` aside; returns how many."""
    moved = 0
    for f in sorted((stac_dir / "items").glob("*.ndjson")):
        keep, out = [], []
        for line in f.read_text().splitlines():
            if line.strip():
                (out if _in_week(json.loads(line), week_start) else keep).append(line)
        f.write_text("".join(x + "\n" for x in keep))
        side = f.with_name(f"{f.name}.withheld")
        side.write_text("".join(x + "\n" for x in out))
        moved += len(out)
    build_api_catalog(stac_dir)
    return moved


def publish_withheld(stac_dir: Path) -> int:
    """Append the withheld items back to their collections; returns how many."""
    added = 0
    for side in sorted((stac_dir / "items").glob("*.ndjson.withheld")):
        lines = [x for x in side.read_text().splitlines() if x.strip()]
        target = side.with_suffix("")
        target.write_text(target.read_text() + "".join(x + "\n" for x in lines))
        side.unlink()
        added += len(lines)
    build_api_catalog(stac_dir)
    return added
