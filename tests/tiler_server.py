"""Run the real tiler (``python -m tiler``, uvicorn) on 127.0.0.1 for tests and benches.

    from tiler_server import running_tiler

    with running_tiler(data_root) as base_url:   # e.g. "http://127.0.0.1:41234"
        urllib.request.urlopen(f"{base_url}/api/weeks")

The server is a subprocess on a free port (uvicorn picks it; its start line names it), so
it is the same program a user runs; its log is kept and shown if it fails to start.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
_STARTED = re.compile(r"Uvicorn running on (http://[\d.]+:\d+)")
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))
"""Opener that ignores proxy settings: the tiler runs on loopback."""


@contextmanager
def running_tiler(data_root: str | Path, timeout: float = 60.0, workers: int = 1,
                  access_log: bool = False, env: dict[str, str] | None = None,
                  log: list[str] | None = None) -> Iterator[str]:
    """Start the tiler on ``data_root`` (a folder or ``s3://bucket/prefix``); yield its base
    URL; stop it on exit.

    ``env`` adds environment variables (e.g. the tile cache settings); ``log``, when
    given, receives the server's log lines (stderr) as they come.
    """
    root = str(data_root) if "://" in str(data_root) else str(Path(data_root).resolve())
    env = {**os.environ, **(env or {}), "CROPASSETS_DATA": root,
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT),
                                                       os.environ.get("PYTHONPATH")]))}
    # uvicorn logs the line naming its port at info level
    cmd = [sys.executable, "-m", "tiler", "--data", str(data_root), "--host", "127.0.0.1",
           "--port", "0", "--workers", str(workers), "--log-level", "info"]
    if not access_log:
        cmd.append("--no-access-log")
    proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, bufsize=1)
    log = [] if log is None else log
    found = threading.Event()
    base: list[str] = []

    def drain() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            log.append(line)
            m = _STARTED.search(line)
            if m and not found.is_set():
                base.append(m.group(1))
                found.set()

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + timeout
        while not found.wait(0.1):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("tiler did not start:\n" + "".join(log[-40:]))
        _wait_healthy(base[0], deadline)
        yield base[0]
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        reader.join(timeout=5)


def _wait_healthy(base_url: str, deadline: float) -> None:
    while True:
        try:
            with _DIRECT.open(f"{base_url}/healthz", timeout=5) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"tiler at {base_url} did not answer /healthz")
        time.sleep(0.1)


@dataclass(frozen=True)
class HttpResponse:
    """Status, headers and body of one GET."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)


def http_get(url: str, timeout: float = 30.0, headers: dict[str, str] | None = None
             ) -> HttpResponse:
    """GET ``url`` over real HTTP; 4xx/5xx are returned, not raised."""
    try:
        with _DIRECT.open(urllib.request.Request(url, headers=headers or {}),
                          timeout=timeout) as r:
            return HttpResponse(r.status, dict(r.headers.items()), r.read())
    except urllib.error.HTTPError as e:
        return HttpResponse(e.code, dict(e.headers.items()), e.read())
