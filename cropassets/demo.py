"""``cropassets demo``: serve first, then let the demo season unfold week by week.

Starts the tiler (web map) and, unless ``--no-ui``, the Dagster UI (``dagster dev``) on
127.0.0.1, then materializes the world in the order of :func:`cropassets.demo_plan.demo_plan`
through Dagster runs on the instance in ``$DAGSTER_HOME`` (so the UI shows them), skipping
partitions already materialized. Each week's layers are published as soon as its maps exist,
and the web map, which polls ``/api/weeks``, adds it to its slider. When everything is done
the servers keep running until Ctrl-C (or stop at once with ``--exit-when-done``).

The new-week sensor is switched off in the UI's code location while the demo runs: every
week of the demo world is already in its catalog, so the sensor would request the same
partitions again beside this loop.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from cropassets.demo_plan import DemoStep, demo_plan

if TYPE_CHECKING:
    from dagster import DagsterInstance

    from cropassets.resources import DataRoot

REPO = Path(__file__).resolve().parents[1]


@dataclass
class Timeline:
    """Seconds since the demo started at which things became visible."""

    t0: float = field(default_factory=time.perf_counter)
    first_layer_s: float | None = None
    first_crop_map_s: float | None = None

    def now(self) -> float:
        """Seconds since the demo started."""
        return time.perf_counter() - self.t0

    @staticmethod
    def clock(seconds: float) -> str:
        """``m:ss`` of a number of seconds."""
        return f"{int(seconds) // 60}:{int(seconds) % 60:02d}"


def _wait_http(url: str, timeout_s: float, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{' '.join(map(str, proc.args))} exited with {proc.returncode} "
                               f"before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer within {timeout_s:.0f} s")


def start_servers(data: Path, host: str, map_port: int, ui_port: int | None
                  ) -> list[subprocess.Popen]:
    """Start the tiler (and the Dagster UI unless ``ui_port`` is None); wait for the tiler."""
    data.mkdir(parents=True, exist_ok=True)
    procs = [subprocess.Popen(
        [sys.executable, "-m", "tiler", "--data", str(data), "--host", host,
         "--port", str(map_port), "--no-access-log", "--log-level", "warning"],
        cwd=REPO, start_new_session=True)]
    if ui_port is not None:
        dagster = Path(sys.executable).with_name("dagster")
        procs.append(subprocess.Popen(
            [str(dagster), "dev", "-w", str(REPO / "workspace.yaml"), "-h", host,
             "-p", str(ui_port)], cwd=REPO, start_new_session=True,
            env=dict(os.environ, CROPASSETS_SENSOR="off"),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    try:
        _wait_http(f"http://{host}:{map_port}/api/weeks", 120, procs[0])
    except BaseException:
        stop_servers(procs)
        raise
    return procs


def stop_servers(procs: list[subprocess.Popen]) -> None:
    """Stop each server's process group (SIGTERM, then SIGKILL after 10 s)."""
    for p in procs:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGTERM)
    for p in procs:
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


def stale_weeks(root: DataRoot, week_keys: list[str]) -> set[str]:
    """Weeks whose model record or published manifest was written before the knee report."""
    from cropassets.core.publish.manifest_record import WeekManifest

    if root.knee_week() is None:
        return set()
    stale = set()
    for w in week_keys:
        record = root.week_model_record(w)
        manifest = root.manifest_path(w)
        if (record is not None and record.knee_week is None) or (
                manifest.exists() and WeekManifest.read(manifest).knee_week is None):
            stale.add(w)
    return stale


def keys_to_run(step: DemoStep, stale: set[str], instance: DagsterInstance
                ) -> list[str | None]:
    """Keys of ``step`` still to materialize: missing ones, or stale ones on refresh steps."""
    from dagster import AssetKey

    from cropassets.materialize import materialized_by_all

    if step.refresh_after_knee:
        return [k for k in step.keys if k.split("|")[-1] in stale]
    if not step.keys:
        done = instance.get_latest_materialization_event(AssetKey(step.assets[0]))
        return [] if done is not None else [None]
    have = materialized_by_all(instance, [AssetKey(a) for a in step.assets])
    return [k for k in step.keys if k not in have]


def run_plan(steps: list[DemoStep], timeline: Timeline, url: str,
             run_keys: Callable[[list[str], list[str | None], str], list[str]]) -> bool:
    """Materialize the steps in order; print each published week. False when a step failed."""
    from dagster import DagsterInstance

    from cropassets.core.publish.manifest_record import WeekManifest
    from cropassets.resources import DataRoot
    from cropassets.settings import load_settings

    root = DataRoot(root=str(load_settings().data_root))
    instance = DagsterInstance.get()
    stale: set[str] | None = None
    for step in steps:
        if step.refresh_after_knee and stale is None:
            stale = stale_weeks(root, sorted({k.split("|")[-1] for s in steps for k in s.keys
                                        if s.refresh_after_knee}))
        keys = keys_to_run(step, stale or set(), instance)
        if not keys:
            continue
        print(f"[demo] {timeline.clock(timeline.now())} {step.label}: "
              f"{'+'.join(step.assets)} ({len(keys)} partitions)", flush=True)
        failed = run_keys(list(step.assets), keys, "")
        if failed:
            print(f"[demo] {step.label}: {'+'.join(step.assets)} failed for {failed}; the "
                  "demo stops materializing (the runs and their logs are in the Dagster UI)",
                  file=sys.stderr, flush=True)
            return False
        if step.publishes:
            manifest = WeekManifest.read(root.manifest_path(step.publishes))
            t = timeline.now()
            timeline.first_layer_s = timeline.first_layer_s or round(t, 1)
            if manifest.layers.crop and timeline.first_crop_map_s is None:
                timeline.first_crop_map_s = round(t, 1)
            layers = [n for n in ("crop", "sos", "coverage") if getattr(manifest.layers, n)]
            print(f"[demo] {timeline.clock(t)} published week {step.publishes} "
                  f"({', '.join(layers)}) -> {url}", flush=True)
    return True


def run_demo(host: str = "127.0.0.1", map_port: int = 8080, ui_port: int | None = 3000,
             exit_when_done: bool = False, poll_s: int = 10) -> int:
    """Serve, materialize the demo season week by week, keep serving; returns an exit code."""
    from cropassets.materialize import _run_keys
    from cropassets.partitions import MIN_WEEKS, SEASONS, TILES
    from cropassets.settings import load_settings

    def _terminate(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # SIGTERM stops the loop and the servers as Ctrl-C does

    signal.signal(signal.SIGTERM, _terminate)
    timeline = Timeline()
    data = load_settings().data_root
    url = f"http://{host}:{map_port}/?poll={poll_s}"
    procs = start_servers(data, host, map_port, ui_port)
    print(f"[demo] web map:    {url}", flush=True)
    if ui_port is not None:
        print(f"[demo] Dagster UI: http://{host}:{ui_port}/", flush=True)
    ok = False
    try:
        ok = run_plan(demo_plan(SEASONS, list(TILES), MIN_WEEKS), timeline, url, _run_keys)
        first = timeline.first_crop_map_s
        print(f"[demo] {timeline.clock(timeline.now())} "
              f"{'done' if ok else 'stopped'}: first layer at "
              f"{timeline.clock(timeline.first_layer_s or 0)}, first crop map at "
              f"{timeline.clock(first) if first is not None else '-'} (since serving began)",
              flush=True)
        if not exit_when_done:
            print("[demo] serving; Ctrl-C stops", flush=True)
            while all(p.poll() is None for p in procs):
                time.sleep(1)
    except KeyboardInterrupt:
        print("\n[demo] stopping", flush=True)
    finally:
        stop_servers(procs)
    return 0 if ok else 1
