"""Serve the local STAC catalog (``DIR/stac``) as a STAC API, fully offline.

The on-disk catalog (``collections.json`` plus ``items/<collection-id>.ndjson``, see
``docs/CONTRACTS.md``) is converted to one stac-geoparquet file per collection under
``DIR/stac/api/`` and served by stac-fastapi-geoparquet on top of rustac's DuckDB client.

rustac bundles DuckDB, which needs its ``spatial``, ``icu`` and ``parquet`` extensions and
would download them. We take them from the ``duckdb-extension-*`` wheels instead and lay
them out the way DuckDB looks for them (``<dir>/v1.5.5/linux_amd64/<name>.duckdb_extension``),
so nothing is ever downloaded.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import platform
import signal
import socket
import tempfile
import threading
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import rustac
import uvicorn
from fastapi import FastAPI

from cropassets.core.storage import folder_lock, write_bytes_atomic

DUCKDB_EXTENSIONS = ("spatial", "icu", "parquet")
"""DuckDB extensions rustac needs; each comes from the wheel ``duckdb-extension-<name>``."""

DUCKDB_EXTENSION_VERSION = "1.5.5"
"""The DuckDB version bundled in rustac 0.9.17, and so the version of the extension wheels."""

PARQUET_MEDIA_TYPE = "application/vnd.apache.parquet"
PARQUET_ASSET_KEY = "geoparquet-items"
API_DIRNAME = "api"
_MANIFEST = "_build.json"


class StacServerError(RuntimeError):
    """The local STAC API cannot be configured, built or started."""


# --------------------------------------------------------------------------- DuckDB


def _cache_root() -> Path:
    """``$XDG_CACHE_HOME`` or ``~/.cache``."""
    xdg = os.environ.get("XDG_CACHE_HOME")
    return Path(xdg) if xdg else Path.home() / ".cache"


def _duckdb_platform() -> str:
    """DuckDB's platform name for this machine, e.g. ``linux_amd64``."""
    machine = platform.machine().lower()
    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}
    if machine not in arch:
        raise StacServerError(f"no DuckDB extension platform known for machine {machine!r}")
    system = platform.system().lower()
    return f"{'osx' if system == 'darwin' else system}_{arch[machine]}"


def _extension_wheel_file(name: str) -> Path:
    """Path of ``<name>.duckdb_extension`` inside the installed ``duckdb-extension-<name>``."""
    package = f"duckdb-extension-{name}=={DUCKDB_EXTENSION_VERSION}"
    spec = importlib.util.find_spec(f"duckdb_extension_{name}")
    if spec is None or not spec.submodule_search_locations:
        raise StacServerError(
            f"DuckDB extension {name!r} is missing: install the Python package {package!r}"
        )
    for location in spec.submodule_search_locations:
        path = (
            Path(location)
            / "extensions"
            / f"v{DUCKDB_EXTENSION_VERSION}"
            / f"{name}.duckdb_extension"
        )
        if path.is_file():
            return path
    raise StacServerError(
        f"the installed duckdb_extension_{name} has no v{DUCKDB_EXTENSION_VERSION} "
        f"extension file: install the Python package {package!r}"
    )


def _atomic_symlink(target: Path, link: Path) -> None:
    """Point ``link`` at ``target``; atomic, idempotent and safe against concurrent callers."""
    with contextlib.suppress(OSError):
        if link.is_symlink() and Path(os.readlink(link)) == target:
            return
    tmp = link.with_name(f".{link.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    tmp.symlink_to(target)
    os.replace(tmp, link)


def duckdb_extension_directory(root: Path | None = None) -> Path:
    """Build (idempotently) the DuckDB extension directory from the installed wheels.

    Args:
        root: Where to build it; default ``$XDG_CACHE_HOME``/``~/.cache`` +
            ``cropassets/duckdb-extensions``.

    Returns:
        The directory to pass as DuckDB's ``extension_directory``.

    Raises:
        StacServerError: An extension wheel is missing (the message names the package).
    """
    root = Path(root) if root else _cache_root() / "cropassets" / "duckdb-extensions"
    sources = {name: _extension_wheel_file(name) for name in DUCKDB_EXTENSIONS}
    target_dir = root / f"v{DUCKDB_EXTENSION_VERSION}" / _duckdb_platform()
    target_dir.mkdir(parents=True, exist_ok=True)
    for name, source in sources.items():
        _atomic_symlink(source.resolve(), target_dir / f"{name}.duckdb_extension")
    return root


def duckdb_client() -> rustac.DuckdbClient:
    """A rustac DuckDB client that loads its extensions from the wheels and never downloads.

    Raises:
        StacServerError: An extension wheel is missing or DuckDB rejects the extensions.
    """
    directory = duckdb_extension_directory()
    try:
        client = rustac.DuckdbClient(extension_directory=directory, install_extensions=False)
        client.execute("SET autoinstall_known_extensions = false")
    except rustac.RustacError as err:
        raise StacServerError(
            f"DuckDB could not load its extensions from {directory} (rustac must bundle "
            f"DuckDB {DUCKDB_EXTENSION_VERSION}, matching the duckdb-extension-* wheels): {err}"
        ) from err
    return client


# --------------------------------------------------------------------------- catalog


def _signature(path: Path) -> list[int] | None:
    """(mtime_ns, size, inode) of a file, or None when it does not exist."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return [st.st_mtime_ns, st.st_size, st.st_ino]


def _read_ndjson(path: Path) -> list[dict[str, Any]]:
    """Items of an ndjson file.

    Blank lines are skipped, and so is an unterminated last line that does not parse (a
    writer still appending it; the changed file is rebuilt on the next call).
    """
    lines = path.read_text(encoding="utf-8").split("\n")
    tail = lines.pop()  # "" when the file ends with a newline
    items = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            items.append(json.loads(line))
        except ValueError as err:
            raise StacServerError(f"{path}:{number}: not a JSON item: {err}") from err
    with contextlib.suppress(ValueError):
        if tail.strip():
            items.append(json.loads(tail))
    return items


def _write_parquet(items: list[dict[str, Any]], path: Path) -> None:
    """Write items as stac-geoparquet to ``path`` atomically."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        rustac.write_sync(tmp, items, format="geoparquet")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _load_source_collections(stac_dir: Path) -> list[dict[str, Any]]:
    """The collections of ``stac_dir/collections.json`` (``{"collections": [...]}``)."""
    path = stac_dir / "collections.json"
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise StacServerError(f"no STAC catalog at {stac_dir}: {path} is missing") from err
    collections = doc.get("collections") if isinstance(doc, dict) else None
    if not isinstance(collections, list):
        raise StacServerError(f'{path} must hold {{"collections": [...]}}')
    return collections


def _api_collection(collection: dict[str, Any], has_items: bool) -> dict[str, Any]:
    """Copy of a collection whose assets point at its parquet file (when it has items)."""
    out = dict(collection)
    assets = {
        k: v
        for k, v in (collection.get("assets") or {}).items()
        if v.get("type") != PARQUET_MEDIA_TYPE
    }
    if has_items:
        assets[PARQUET_ASSET_KEY] = {
            "href": f"./{collection['id']}.parquet",
            "type": PARQUET_MEDIA_TYPE,
            "title": "Items (stac-geoparquet)",
            "roles": ["data"],
        }
    out["assets"] = assets
    return out


def _build_collection(stac_dir: Path, api_dir: Path, cid: str, previous: Any) -> Any:
    """Rebuild one collection's parquet file if its ndjson changed; return its signature."""
    ndjson = stac_dir / "items" / f"{cid}.ndjson"
    parquet = api_dir / f"{cid}.parquet"
    signature = _signature(ndjson)
    if signature is not None and signature == previous and parquet.exists():
        return signature
    items = _read_ndjson(ndjson) if signature is not None else []
    if items:
        _write_parquet(items, parquet)
        return signature
    with contextlib.suppress(FileNotFoundError):
        parquet.unlink()
    return None


def build_api_catalog(stac_dir: Path) -> Path:
    """Convert the on-disk catalog into what stac-fastapi-geoparquet serves.

    Writes ``stac_dir/api/<collection-id>.parquet`` (one stac-geoparquet file per collection)
    and ``stac_dir/api/collections.json`` (a JSON *list* of collections, each with an
    ``application/vnd.apache.parquet`` asset; collections without items get none). Files are
    written atomically. A collection is rebuilt only when its ndjson changed (mtime, size or
    inode differ from the last build), so repeated calls are cheap and items appended to an
    ndjson are picked up. Concurrent builders (threads or processes) are serialised by a lock.

    Args:
        stac_dir: The catalog directory (``DIR/stac``).

    Returns:
        Path of ``stac_dir/api/collections.json``.
    """
    stac_dir = Path(stac_dir).absolute()
    api_dir = stac_dir / API_DIRNAME
    api_dir.mkdir(parents=True, exist_ok=True)
    out = api_dir / "collections.json"
    with folder_lock(api_dir):
        try:
            manifest = json.loads((api_dir / _MANIFEST).read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            manifest = {}
        source_sig = _signature(stac_dir / "collections.json")
        collections = _load_source_collections(stac_dir)
        items_sigs = {
            c["id"]: _build_collection(
                stac_dir, api_dir, c["id"], manifest.get("items", {}).get(c["id"])
            )
            for c in collections
        }
        new_manifest = {"collections": source_sig, "items": items_sigs}
        if new_manifest != manifest or not out.exists():
            api_collections = [
                _api_collection(c, items_sigs[c["id"]] is not None) for c in collections
            ]
            write_bytes_atomic(out, json.dumps(api_collections, indent=1).encode())
            write_bytes_atomic(api_dir / _MANIFEST, json.dumps(new_manifest).encode())
    return out


# --------------------------------------------------------------------------- server


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
