"""Serve the local STAC catalog (``DIR/stac``) as a STAC API over HTTP, fully offline.

The catalog is first converted to stac-geoparquet with an offline DuckDB client
(:mod:`cropassets.core.stac.api_catalog`); stac-fastapi-geoparquet serves it from a
uvicorn server in a background thread (:func:`start_server`, :func:`serve`,
:func:`shared_local_server`) or in the foreground (:func:`main_serve`).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import threading
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from cropassets.core.stac.api_catalog import StacServerError, build_api_catalog, duckdb_client


def create_app(stac_dir: Path) -> FastAPI:
    """Build the API catalog of ``stac_dir`` and return the stac-fastapi-geoparquet app.

    The app re-reads ``api/collections.json`` at most every second and each parquet file on
    every search, so a later :func:`build_api_catalog` is seen by a running server.
    """
    # stac-fastapi 6.2 answers through fastapi's deprecated ORJSONResponse on every request;
    # harmless, and pinned (see pyproject), so keep it out of logs and test output.
    warnings.filterwarnings("ignore", message="ORJSONResponse is deprecated")
    # Imported here: the package's stock ``main`` module would try to download extensions.
    from stac_fastapi.geoparquet.api import create
    from stac_fastapi.geoparquet.settings import Settings

    collections_href = build_api_catalog(stac_dir)
    settings = Settings(
        stac_fastapi_collections_href=str(collections_href),
        stac_fastapi_collections_reload_seconds=1,
        stac_fastapi_landing_id="cropassets-local",
        stac_fastapi_title="cropassets local STAC API",
        stac_fastapi_description=f"Local STAC catalog served from {Path(stac_dir).absolute()}",
    )
    return create(settings=settings, duckdb_client=duckdb_client()).app


@dataclass
class RunningServer:
    """A STAC API running in a background thread.

    Attributes:
        url: Base URL, e.g. ``"http://127.0.0.1:43127"``.
        stac_dir: The served catalog directory.
    """

    url: str
    stac_dir: Path
    _server: uvicorn.Server = field(repr=False)
    _thread: threading.Thread = field(repr=False)

    def stop(self, timeout_s: float = 10.0) -> None:
        """Ask the server to exit and wait for its thread."""
        self._server.should_exit = True
        self._thread.join(timeout_s)

    @property
    def alive(self) -> bool:
        """Whether the server thread is still running."""
        return self._thread.is_alive()


def _bind(host: str, port: int) -> socket.socket:
    """A listening-ready TCP socket bound to (host, port); port 0 picks a free one."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def _url(host: str, port: int) -> str:
    """HTTP base URL for host and port (IPv6 literals bracketed)."""
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _wait_until_up(url: str, thread: threading.Thread, timeout_s: float) -> None:
    """Poll ``url/`` until it answers 200, the thread dies, or the timeout passes."""
    deadline = time.monotonic() + timeout_s
    last: Exception | None = None
    while time.monotonic() < deadline:
        if not thread.is_alive():
            raise StacServerError(f"STAC API server at {url} exited during startup")
        try:
            with _NO_PROXY.open(url + "/", timeout=2) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError) as err:
            last = err
        time.sleep(0.05)
    raise StacServerError(f"STAC API server at {url} did not answer in {timeout_s} s: {last}")


def start_server(
    stac_dir: Path,
    host: str = "127.0.0.1",
    port: int = 0,
    daemon: bool = True,
    startup_timeout_s: float = 30.0,
) -> RunningServer:
    """Start the STAC API for ``stac_dir`` in a background thread; call ``.stop()`` to end it.

    Raises:
        StacServerError: The server did not come up.
    """
    app = create_app(stac_dir)
    sock = _bind(host, port)
    bound_port = sock.getsockname()[1]
    url = _url(host, bound_port)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run,
        kwargs={"sockets": [sock]},
        name=f"stac-api:{bound_port}",
        daemon=daemon,
    )
    thread.start()  # from here on uvicorn owns (and finally closes) the socket
    running = RunningServer(url=url, stac_dir=Path(stac_dir), _server=server, _thread=thread)
    try:
        _wait_until_up(url, thread, startup_timeout_s)
    except BaseException:
        running.stop()
        raise
    return running


@contextlib.contextmanager
def serve(stac_dir: Path, host: str = "127.0.0.1", port: int = 0) -> Iterator[RunningServer]:
    """Run the STAC API for ``stac_dir`` while the ``with`` block runs.

    Example::

        with serve(world / "stac") as server:
            items = search_items(server.url, ...)

    Args:
        stac_dir: The catalog directory (``DIR/stac``).
        host: Interface to listen on.
        port: TCP port; 0 picks a free one.

    Yields:
        The running server; its ``url`` is the API's base URL.
    """
    running = start_server(stac_dir, host, port)
    try:
        yield running
    finally:
        running.stop()


_SHARED: dict[tuple[int, Path], RunningServer] = {}
_SHARED_LOCK = threading.Lock()


def shared_local_server(stac_dir: Path) -> str:
    """URL of a process-wide STAC API for ``stac_dir``, started on first use.

    The server runs in a daemon thread and is reused by later calls in the same process (a
    forked child starts its own). Each call refreshes the API catalog, so items appended to
    the ndjson files since the server started are found by the next search.
    """
    key = (os.getpid(), Path(stac_dir).resolve())
    with _SHARED_LOCK:
        running = _SHARED.get(key)
        if running is not None and running.alive:
            build_api_catalog(key[1])
            return running.url
        running = start_server(key[1])
        _SHARED[key] = running
        return running.url


def _raise_interrupt(signum: int, frame: object) -> None:
    """Signal handler turning SIGTERM into KeyboardInterrupt (clean shutdown)."""
    raise KeyboardInterrupt


def main_serve(stac_dir: Path, host: str = "127.0.0.1", port: int = 8081) -> None:
    """Serve ``stac_dir`` in the foreground until SIGINT/SIGTERM (``cropassets serve-stac``)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _raise_interrupt)
    with serve(stac_dir, host, port) as running:
        print(f"STAC API for {Path(stac_dir).absolute()} at {running.url}", flush=True)
        try:
            while running.alive:
                time.sleep(0.5)
        except KeyboardInterrupt:
            print("stopping", flush=True)
