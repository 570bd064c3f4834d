"""The local STAC catalog (``DIR/stac``) as stac-geoparquet, and an offline DuckDB client.

The on-disk catalog (``collections.json`` plus ``items/<collection-id>.ndjson``, see
``docs/CONTRACTS.md``) is converted to one stac-geoparquet file per collection under
``DIR/stac/api/`` (:func:`build_api_catalog`), which the HTTP server of
:mod:`cropassets.core.stac.server` serves through rustac's DuckDB client.

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
import tempfile
import threading
from pathlib import Path
from typing import Any

import rustac

from cropassets.core.storage import folder_lock, write_bytes_atomic
from cropassets.settings import cache_root

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
    root = Path(root) if root else cache_root() / "cropassets" / "duckdb-extensions"
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
