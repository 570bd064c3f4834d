"""`cropassets demo`: the web map is served first and its weeks grow while the season unfolds."""

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.request

import pytest

from tests.dagster_services import free_port

# a server (the tiler) and the demo's own runs of tiny partitions: marked with the tests that
# run Dagster services (docs/testing.md)
pytestmark = [pytest.mark.slow, pytest.mark.services]


def _weeks(port: int) -> list[str]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/weeks", timeout=10) as r:
        doc = json.load(r)
    return [w["week"] for s in doc["seasons"] for w in s["weeks"]]


def _port_closed(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def test_demo_serves_first_and_publishes_week_by_week(tmp_path):
    from cropassets.core.publish.manifest_record import WeekManifest
    from cropassets.partitions import SEASONS

    current = [w.isoformat() for s in SEASONS if s.role == "current" for w in s.week_starts()]
    port = free_port()
    (tmp_path / "home").mkdir()
    env = dict(os.environ, CROPASSETS_DATA=str(tmp_path / "data"),
               DAGSTER_HOME=str(tmp_path / "home"))
    cmd = [sys.executable, "-m", "cropassets.cli", "demo", "--no-ui", "--exit-when-done",
           "--map-port", str(port)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True)
    seen: list[list[str]] = []
    lines = []
    try:
        for line in proc.stdout:
            lines.append(line)
            if "published week" in line and "with the knee" not in lines[-2]:
                # the tiler answers while the loop still runs, with the weeks published so far
                assert proc.poll() is None
                seen.append(_weeks(port))
        assert proc.wait(60) == 0, "".join(lines[-20:])
    finally:
        if proc.poll() is None:
            proc.kill()
    text = "".join(lines)
    assert "web map:" in lines[0]  # served before anything is materialized
    # the slider grows one week at a time: after the n-th publish the tiler lists n weeks
    assert seen[:len(current)] == [current[:n] for n in range(1, len(current) + 1)]
    assert "first crop map at" in text and "first crop map at -" not in text
    assert _port_closed(port)  # --exit-when-done stopped the tiler
    for w in current:  # every week republished with the knee report
        m = WeekManifest.read(tmp_path / "data" / "week_layers" / f"{w}.json")
        assert m.knee_week is not None
    crop_weeks = [w for w in current if WeekManifest.read(
        tmp_path / "data" / "week_layers" / f"{w}.json").layers.crop]
    assert crop_weeks == current[2:]  # weeks 1-2 have no model

    # a second demo finds everything materialized: it only serves, until SIGTERM stops it
    again = subprocess.Popen(cmd[:-3] + ["--map-port", str(port)], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        out = []
        for line in again.stdout:
            out.append(line)
            if "serving; Ctrl-C stops" in line:
                assert _weeks(port) == current  # the finished season is served at once
                again.send_signal(signal.SIGTERM)
        assert again.wait(60) == 0, "".join(out[-20:])
    finally:
        if again.poll() is None:
            again.kill()
    assert not [ln for ln in out if "partitions)" in ln], out  # nothing was materialized
    assert any("serving; Ctrl-C stops" in ln for ln in out) and "[demo] stopping" in out[-1]
    assert _port_closed(port)  # the tiler was stopped with the loop
