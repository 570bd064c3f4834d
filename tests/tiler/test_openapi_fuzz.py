"""The tiler's OpenAPI document, its docs page, and schemathesis fuzzing of every route.

The fuzz test loads ``/openapi.json`` from the live tiler, widens its path and query
parameters so that generated values include the published weeks, versions and tiles and
traversal strings aimed at a canary COG outside the data root, and sends bounded
numbers of positive and negative cases per operation. Every answer must be below 500, its
body must name no server path, and the canary must never be read (its access time, set
behind its modification time, would move on a read; relatime updates it then).
"""

from __future__ import annotations

import copy
import os
import re
import shutil
import time
from pathlib import Path
from urllib.parse import unquote

import morecantile
import pytest
from tiler_server import REPO_ROOT, http_get

PUBLIC_PATHS = {"/healthz", "/api/weeks", "/api/legend", "/api/point",
                "/download/{week}/{tile}/{product}.tif", "/download/{week}/{tile}/{style}.qml",
                "/download/{week}/{product}.vrt", "/download/{week}/{style}.qml"}
for _layer in ("crop", "confidence", "sos", "coverage"):
    for _prefix in (f"/layers/{_layer}/{{week}}", f"/layers/{_layer}/{{week}}/v/{{version}}"):
        PUBLIC_PATHS |= {f"{_prefix}/tiles/{{tileMatrixSetId}}/{{z}}/{{x}}/{{y}}.{{format}}",
                         f"{_prefix}/{{tileMatrixSetId}}/tilejson.json"}
PUBLIC_PATHS |= {"/stac", "/stac/conformance", "/stac/collections",
                 "/stac/collections/{collection_id}", "/stac/collections/{collection_id}/items",
                 "/stac/collections/{collection_id}/items/{item_id}", "/stac/search"}
METHODS = {"/stac/search": {"get", "post"}}
"""Methods of each path other than GET alone."""

EXAMPLES_PER_OPERATION = 20  # positive and as many negative cases per operation


def test_openapi_lists_the_public_routes_only(tiler_url):
    r = http_get(f"{tiler_url}/openapi.json")
    assert r.status == 200
    doc = r.json()
    assert set(doc["paths"]) == PUBLIC_PATHS
    assert all(set(ops) == METHODS.get(path, {"get"}) for path, ops in doc["paths"].items())
    text = r.body.decode()
    for hidden in ("{rest}", "/static", "map.html", "/info", "url"):
        assert f'"{hidden}' not in text and f"/{hidden}" not in text.replace("/static/docs", "")


def test_docs_page_loads_swagger_ui_from_the_tiler(tiler_url):
    page = http_get(f"{tiler_url}/docs")
    assert page.status == 200 and page.headers["content-type"].startswith("text/html")
    html = page.body.decode()
    assets = re.findall(r"""(?:src|href)=['"]([^'"]+)['"]""", html)
    assert assets and all(not a.startswith(("http:", "https:", "//")) for a in assets), assets
    assert "openapi.json" in html
    for asset in assets:
        r = http_get(f"{tiler_url}/{asset.lstrip('/')}")
        assert r.status == 200 and len(r.body) > 1000, asset
    js = http_get(f"{tiler_url}/static/docs/swagger-ui-bundle.js").body
    assert b"SwaggerUIBundle" in js


def _with_values(doc: dict, values: dict[str, list]) -> dict:
    """``doc`` with each named parameter taking one of ``values`` (published ids, traversal
    strings): positive cases then reach real data; negative ones stay random."""
    doc = copy.deepcopy(doc)
    for ops in doc["paths"].values():
        for op in ops.values():
            for p in op.get("parameters", []):
                if p["name"] in values:
                    p["schema"] = {"enum": values[p["name"]]}
    return doc


@pytest.fixture
def canary(tmp_path, published) -> Path:
    """A real COG outside the data root whose access time shows any read of it (so the
    test reads its source instead)."""
    src = Path(published.root) / "crop_map" / published.field_tile / \
        f"{published.mapped_weeks[0]}.tif"
    path = tmp_path / "outside" / "canary.tif"
    path.parent.mkdir()
    shutil.copyfile(src, path)
    (tmp_path / "outside" / "canary.json").write_text("{}")
    past = time.time() - 3600
    os.utime(path, (past, time.time()))
    return path


def _atime_moves(tmp_path: Path) -> bool:
    probe = tmp_path / "probe"
    probe.write_bytes(b"x")
    os.utime(probe, (time.time() - 3600, time.time()))
    before = probe.stat().st_atime_ns
    probe.read_bytes()
    return probe.stat().st_atime_ns != before


def test_fuzzing_every_operation_gives_no_5xx_and_reveals_no_path(
        tiler_url, published, data_root, canary, tmp_path):
    import requests
    import schemathesis
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis.errors import Unsatisfiable

    near = [morecantile.tms.get("WebMercatorQuad").tile(*published.field_point, z)
            for z in range(8, 15)]
    weeks = http_get(f"{tiler_url}/api/weeks").json()
    rows = [w for s in weeks["seasons"] for w in s["weeks"]]
    rel = os.path.relpath(canary.with_suffix(""), data_root)  # ../<test dir>/outside/canary
    traversal = [rel, f"{rel}.tif", "../" * 8 + str(canary)[1:], str(canary), "..", "%2e%2e",
                 f"file://{canary}", "/vsicurl/http://127.0.0.1:1/x.tif"]
    doc = http_get(f"{tiler_url}/openapi.json").json()
    positive = _with_values(doc, {
        "week": [w["week"] for w in rows] + traversal,
        "version": [w["version"] for w in rows] + ["000000000000"] + traversal,
        "tile": [published.field_tile] + traversal,
        "product": ["crop", "sos", "coverage"] + traversal,
        "style": ["crop", "confidence", "sos", "coverage"] + traversal,
        "z": list(range(8, 15)),
        "x": [t.x for t in near], "y": [t.y for t in near],
        "format": ["png"],
        "tilesize": [256, 512],
        "lon": [published.field_point[0], 10.0, -180.0, 181.0],
        "lat": [published.field_point[1], 10.0, 90.0, -91.0],
        "collection_id": ["cropassets-crop", "cropassets-sos"] + traversal,
        "item_id": [f"crop-{published.field_tile}-{published.mapped_weeks[0]}"] + traversal,
        "bbox": [",".join(str(v) for v in rows[0]["bounds"]), "0,0,1,1", "1,2"],
        "datetime": [published.weeks[0], f"{published.weeks[0]}/..", "x"],
    })
    schemas = {schemathesis.GenerationMode.POSITIVE: schemathesis.openapi.from_dict(positive),
               schemathesis.GenerationMode.NEGATIVE: schemathesis.openapi.from_dict(doc)}
    session = requests.Session()
    session.trust_env = False  # loopback: no proxy
    never = [data_root, str(REPO_ROOT), "site-packages", ".venv", "Traceback"]
    unless_sent = ["/work/", "/tmp/", str(canary.parent)]  # a 4xx may echo the client's value
    canary_head = (Path(published.root) / "crop_map" / published.field_tile /
                   f"{published.mapped_weeks[0]}.tif").read_bytes()[:4096]  # its source
    seen: dict[int, int] = {}

    def check(case) -> None:
        r = case.call(base_url=tiler_url, session=session, timeout=60)
        seen[r.status_code] = seen.get(r.status_code, 0) + 1
        assert r.status_code < 500, (case.method, case.formatted_path, case.query, r.text[:300])
        sent = unquote(case.formatted_path) + repr(case.query)
        for text in never + [t for t in unless_sent if t not in sent]:
            assert text.encode() not in r.content, (case.formatted_path, text, r.content[:300])
        assert canary_head not in r.content, case.formatted_path

    for mode, schema in schemas.items():
        operations = [result.ok() for result in schema.get_all_operations()]
        assert {op.path for op in operations} == PUBLIC_PATHS
        for op in operations:
            run = settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None,
                           derandomize=True, phases=[Phase.explicit, Phase.generate],
                           suppress_health_check=list(HealthCheck))(
                given(case=op.as_strategy(generation_mode=mode))(check))
            try:
                run()
            except Unsatisfiable:  # no parameter to make invalid (/healthz, /api/weeks)
                assert mode is schemathesis.GenerationMode.NEGATIVE, op.path
    assert seen.get(200, 0) >= 30, seen  # real reads happened, not only refusals
    if _atime_moves(tmp_path):
        st = canary.stat()
        assert st.st_atime_ns < st.st_mtime_ns, "the canary outside the data root was read"
