"""Process memory readings shared by the bench scripts (Linux ``/proc``)."""

from __future__ import annotations


def proc_status(field: str) -> int:
    """A byte count from ``/proc/self/status`` (e.g. ``"VmRSS"``, ``"VmHWM"``)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")
