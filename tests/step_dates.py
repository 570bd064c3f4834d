"""Real calendars of dated steps for tests: MODIS 16-day composites and dekads."""

from __future__ import annotations

import numpy as np


def modis_dates(first_year: int, n: int, start_doy: int = 257) -> list[str]:
    """MODIS 16-day composite start dates: day of year 1, 17, ..., 353, restarting each 1 Jan."""
    out, year, doy = [], first_year, start_doy
    while len(out) < n:
        out.append(str(np.datetime64(f"{year}-01-01") + np.timedelta64(doy - 1, "D")))
        doy += 16
        if doy > 365:
            year, doy = year + 1, 1
    return out


def dekads(start: str, n: int) -> list[str]:
    """Dekad start dates (days 1, 11, 21 of each month) from ``start``."""
    d = np.datetime64(start, "D")
    out = []
    while len(out) < n:
        day = int(str(d)[8:10])
        if day in (1, 11, 21):
            out.append(str(d))
        d += np.timedelta64(1, "D")
    return out
