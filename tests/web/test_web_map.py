"""The web map (tiler/static) in a real Chromium against a real tiler serving the truth maps.

Needs /usr/bin/chromium (``apt-get install -y chromium``) and node_modules/maplibre-gl
(``npm ci``); skipped with the reason when either is missing. Screenshots are written to
test-artifacts/ at the repository root.
"""

from __future__ import annotations

import io
import os
from datetime import date, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest
from map_fixtures import publish_truth_maps  # tests/ is on sys.path (root conftest)

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
MAPLIBRE = REPO / "node_modules" / "maplibre-gl" / "dist" / "maplibre-gl.mjs"
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]
VIEWPORT = {"width": 1280, "height": 800}
TOLERANCE = 3  # per RGB channel; the layers use nearest resampling, so colours stay exact
MIN_PIXELS = 50  # pixels of a class colour that count as "the class is drawn"

pytestmark = [
    pytest.mark.skipif(not CHROMIUM.exists(),
                       reason="no /usr/bin/chromium (install it: apt-get install -y chromium)"),
    pytest.mark.skipif(not MAPLIBRE.exists(),
                       reason="no node_modules/maplibre-gl (install it: npm ci)"),
]


def _hex_rgb(color: str) -> tuple[int, int, int]:
    c = color.lstrip("#")
    return int(c[0:2], 16), int(c[2:4], 16), int(c[4:6], 16)


def _rgb(png: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(np.int16)


def _colour_counts(img: np.ndarray, classes: list[dict]) -> dict[str, int]:
    """Pixels of each class colour (within TOLERANCE) in an RGB screenshot."""
    return {c["name"]: int((np.abs(img - np.array(_hex_rgb(c["color"]))).max(axis=-1)
                            <= TOLERANCE).sum()) for c in classes}


class Site:
    """The page of a running tiler in a headless Chromium, with what it logged."""

    def __init__(self, page, base: str, maps, legend: dict):
        self.page = page
        self.base = base
        self.maps = maps
        self.classes = legend["crop"]
        self.errors: list[str] = []
        self.foreign: list[str] = []
        page.on("console", lambda m: m.type == "error" and self.errors.append(
            f"console: {m.text} ({m.location.get('url', '')})"))
        page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))
        page.on("requestfailed", self._failed)
        page.on("request", self._request)

    def _failed(self, request) -> None:
        # MapLibre cancels the tile requests of a layer it removes (week/layer switched)
        if "ERR_ABORTED" not in (request.failure or ""):
            self.errors.append(f"request failed: {request.url} ({request.failure})")

    def _request(self, request) -> None:
        parts = urlsplit(request.url)
        if parts.scheme in ("http", "https", "ws", "wss") and parts.hostname != "127.0.0.1":
            self.foreign.append(request.url)

    def show(self, layer: str, week: str) -> dict:
        """Select layer and week through the page's hooks; the page state afterwards."""
        index = self.maps.weeks.index(week)
        self.page.evaluate("([l, i]) => cropmap.setLayer(l).then(() => cropmap.setWeek(i))",
                           [layer, index])
        return self.state()

    def state(self) -> dict:
        self.page.wait_for_function("document.getElementById('map').dataset.state === 'idle'")
        return self.page.evaluate("cropmap.state")

    def screen_xy(self, lon_lat: tuple[float, float]) -> tuple[float, float]:
        """Map-canvas pixel of a lon/lat (MapLibre's projection)."""
        js = "(ll) => { const p = cropmap.map.project(ll); return [p.x, p.y]; }"
        x, y = self.page.evaluate(js, list(lon_lat))
        return x, y

    def click_map(self, x: float, y: float) -> None:
        box = self.page.locator("#map canvas.maplibregl-canvas").bounding_box()
        self.page.mouse.click(box["x"] + x, box["y"] + y)

    def map_png(self) -> bytes:
        return self.page.locator("#map canvas.maplibregl-canvas").screenshot()

    def save(self, name: str) -> None:
        ARTIFACTS.mkdir(exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / name))


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    from playwright.sync_api import sync_playwright
    from tiler_server import running_tiler  # tests/ is on sys.path (root conftest)

    world = Path(os.environ["CROPASSETS_WORLD"])  # the session test world (tests/conftest.py)
    root = tmp_path_factory.mktemp("web-maps")
    maps = publish_truth_maps(world, root)
    with running_tiler(root) as base, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                     args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport=VIEWPORT)
            legend = page.request.get(f"{base.rstrip('/')}/api/legend").json()
            s = Site(page, base.rstrip("/"), maps, legend)
            page.goto(f"{s.base}/")
            page.evaluate("cropmap.ready")
            s.state()
            yield s
        finally:
            browser.close()


@pytest.fixture(autouse=True)
def _no_page_errors(site):
    before = len(site.errors)
    yield
    assert site.errors[before:] == [], "the page logged errors"
    assert site.foreign == [], "the page fetched something from outside the tiler"


def test_crop_layer_renders_class_colours_with_legend(site):
    week = site.maps.mapped_weeks[-1]
    state = site.show("crop", week)
    assert state["layerShown"] and state["available"]
    counts = _colour_counts(_rgb(site.map_png()), site.classes)
    drawn = [name for name, n in counts.items() if n >= MIN_PIXELS]
    assert len(drawn) >= 2, f"class colours on the map: {counts}"
    # the known field is drawn in its class colour where it is
    x, y = site.screen_xy(site.maps.field_point)
    field = next(c for c in site.classes if c["code"] == site.maps.field_class)
    pixel = _rgb(site.map_png())[round(y), round(x)]
    assert (np.abs(pixel - np.array(_hex_rgb(field["color"]))) <= TOLERANCE).all(), (
        f"pixel {pixel} at the field point is not {field['name']} {field['color']}")
    legend = site.page.locator("#legend")
    for c in site.classes:
        assert legend.locator(f"li[data-code='{c['code']}']").inner_text().strip() == c["name"]
    site.save("web_map.png")


def test_week_slider_steps_weeks(site):
    site.show("crop", site.maps.mapped_weeks[-1])
    slider = site.page.get_by_label("Week", exact=True)
    slider.focus()
    slider.press("Home")
    state = site.state()
    assert state["weekIndex"] == 0 and state["week"] == site.maps.weeks[0]
    # week 1: no model yet -> not available, with the manifest's reason; no crop layer
    assert not state["available"] and not state["layerShown"]
    assert site.page.locator("#week-label").inner_text() == f"week 1 ({site.maps.weeks[0]})"
    assert site.page.locator("#week-badge").inner_text() == "not available"
    assert "no model before week 3" in site.page.locator("#week-state").inner_text()
    assert site.page.locator("#xyz-url").input_value() == ""
    counts = _colour_counts(_rgb(site.map_png()), site.classes)
    assert max(counts.values()) < MIN_PIXELS, f"week 1 shows class colours: {counts}"
    site.save("web_map_week1.png")
    # week 3: first model, before the knee -> preliminary, crop layer drawn
    slider.press("ArrowRight")
    slider.press("ArrowRight")
    state = site.state()
    assert state["week"] == site.maps.weeks[2] and state["available"] and state["layerShown"]
    assert site.page.locator("#week-label").inner_text() == f"week 3 ({site.maps.weeks[2]})"
    assert site.page.locator("#week-badge").inner_text() == "preliminary"
    assert "without radar" not in site.page.locator("#week-state").inner_text()
    counts = _colour_counts(_rgb(site.map_png()), site.classes)
    assert sum(n >= MIN_PIXELS for n in counts.values()) >= 2, counts
    site.save("web_map_week3.png")
    # after the knee: no preliminary badge; the last week names the model that made it
    slider.press("End")
    state = site.state()
    assert site.page.locator("#week-badge").inner_text() == ""
    assert state["modelKind"] == "random_forest"
    assert site.page.locator("#week-label").inner_text() == (
        f"week {len(site.maps.weeks)} · random forest ({site.maps.weeks[-1]})")
    state_text = site.page.locator("#week-state").inner_text()
    assert "Model (random forest) accuracy 90 %" in state_text
    # the last week's manifest says one week behind it had no radar: the page says so
    assert "Made without radar in 1 week (missing in 1 of" in state_text


def test_fast_slider_steps_end_on_the_last_week(site):
    site.show("confidence", site.maps.weeks[0])
    slider = site.page.get_by_label("Week", exact=True)
    for key in ["ArrowRight"] * (len(site.maps.weeks) - 1) + ["ArrowLeft", "ArrowRight"]:
        slider.press(key)  # no wait: renders overlap and the stale ones must give way
    state = site.state()
    assert state["week"] == site.maps.weeks[-1] and state["layerShown"]
    assert site.page.locator("#xyz-url").input_value().count(site.maps.weeks[-1]) == 1


def test_confidence_tiles_change_with_the_week(site):
    first, last = site.maps.mapped_weeks[0], site.maps.mapped_weeks[-1]
    site.show("confidence", first)
    png_first = site.map_png()
    assert "%" in site.page.locator("#legend").inner_text()
    site.show("confidence", last)
    png_last = site.map_png()
    site.save("web_map_confidence.png")
    changed = (np.abs(_rgb(png_first) - _rgb(png_last)).max(axis=-1) > TOLERANCE).sum()
    assert changed > 1000, "the confidence layer looks the same in two weeks"


def test_sos_layer_shown_without_a_model(site):
    state = site.show("sos", site.maps.weeks[0])
    assert state["layerShown"] and not state["available"]
    assert "/layers/sos/" in site.page.locator("#xyz-url").input_value()
    legend = site.page.locator("#legend").inner_text()
    assert "day" in legend and site.maps.weeks[0][:4] in legend
    img = _rgb(site.map_png())
    background = img[2, 2]
    assert (np.abs(img - background).max(axis=-1) > 10).sum() > 1000, "no SOS pixels drawn"
    site.save("web_map_sos.png")


def test_click_on_field_shows_its_class(site):
    week = site.maps.mapped_weeks[-1]
    site.show("crop", week)
    site.click_map(*site.screen_xy(site.maps.field_point))
    info = site.page.locator(".maplibregl-popup .point-info[data-state='done']")
    info.wait_for()
    code = site.maps.field_class
    name = next(c["name"] for c in site.classes if c["code"] == code)
    assert info.get_attribute("data-class-name") == name
    text = info.inner_text()
    week_of_season = site.maps.weeks.index(week) + 1  # the fixture: confidence 40 + 10 x week
    assert name in text and f"{min(100, 40 + 10 * week_of_season)} %" in text
    if code <= 4:  # the fixture's SOS: 140 + 5 x class for classes 1-4, none otherwise
        sos = 140 + 5 * code
        assert f"day {sos}" in text
        assert (date(int(week[:4]), 1, 1) + timedelta(days=sos - 1)).isoformat() in text
    site.save("web_map_popup.png")
    site.page.locator(".maplibregl-popup-close-button").click()
    # outside the published tiles: said so, and no request that would fail
    site.click_map(5, VIEWPORT["height"] - 200)
    info.wait_for()
    assert "outside the mapped area" in info.inner_text()
    site.page.locator(".maplibregl-popup-close-button").click()


def test_xyz_template_and_downloads(site):
    week = site.maps.mapped_weeks[-1]
    site.show("crop", week)
    xyz = site.page.locator("#xyz-url").input_value()
    assert xyz.startswith(f"{site.base}/") and "/{z}/{x}/{y}" in xyz and week in xyz
    # the template works as given (what QGIS does): a tile over the known field
    lon, lat = site.maps.field_point
    z = 14
    n = 2 ** z
    x = int((lon + 180) / 360 * n)
    y = int((1 - np.arcsinh(np.tan(np.radians(lat))) / np.pi) / 2 * n)
    tile = site.page.request.get(xyz.replace("{z}", str(z)).replace("{x}", str(x))
                                 .replace("{y}", str(y)))
    assert tile.status == 200 and tile.body()[:8] == b"\x89PNG\r\n\x1a\n"
    tiles = _tiles(site.maps.root, week)
    links = site.page.locator("#downloads a")
    got = sorted((a.get_attribute("data-tile"), a.get_attribute("data-product"))
                 for a in links.all())
    assert got == sorted((t, p) for t in tiles for p in ("crop", "sos", "coverage"))
    href = site.page.locator(f"#downloads a[data-tile='{tiles[0]}'][data-product='crop']")
    cog = site.page.request.get(href.get_attribute("href"))
    assert cog.status == 200 and cog.body()[:4] in (b"II*\x00", b"MM\x00*")
    # the whole region (VRT) and QGIS styles; the STAC API URL, which pystac-client opens
    regions = site.page.locator("#regions a")
    got = sorted((a.get_attribute("data-kind"), a.get_attribute("data-product")
                  or a.get_attribute("data-style")) for a in regions.all())
    assert got == [("qml", "confidence"), ("qml", "coverage"), ("qml", "crop"), ("qml", "sos"),
                   ("vrt", "coverage"), ("vrt", "crop"), ("vrt", "sos")]
    vrt = site.page.request.get(site.page.locator("#regions a[data-kind='vrt'][data-product="
                                                  "'crop']").get_attribute("href"))
    assert vrt.status == 200 and vrt.body().startswith(b"<VRTDataset")
    qml = site.page.request.get(site.page.locator("#regions a[data-style='crop']")
                                .get_attribute("href"))
    assert qml.status == 200 and b'type="paletted"' in qml.body()
    stac = site.page.locator("#stac-url").input_value()
    assert stac == f"{site.base}/stac"
    from pystac_client import Client

    assert {c.id for c in Client.open(stac).get_collections()} >= {"cropassets-crop"}
    # a week without a model offers only the SOS COGs
    site.show("crop", site.maps.weeks[0])
    products = {a.get_attribute("data-product") for a in links.all()}
    assert products == {"sos", "coverage"}
    assert {a.get_attribute("data-product") for a in regions.all()} == {"sos", "coverage", None}


def test_coverage_layer_shows_counts_and_radar(site):
    week = site.maps.weeks[0]  # no model yet: the coverage layer is there all the same
    site.show("coverage", week)
    legend = site.page.locator("#legend")
    assert legend.get_attribute("data-layer") == "coverage"
    assert "since the season start" in legend.inner_text()
    assert site.page.locator(".legend-radar").get_attribute("data-radar") == "all weeks"
    assert "/layers/coverage/" in site.page.locator("#xyz-url").input_value()
    site.click_map(*site.screen_xy(site.maps.field_point))
    info = site.page.locator(".point-info[data-state='done']")
    code = site.maps.field_class
    assert info.get_attribute("data-clear-season") == str(1 + 1 + code % 3)
    assert info.get_attribute("data-radar-week") == "0"
    assert "none this week" in info.inner_text()
    site.page.locator(".maplibregl-popup-close-button").click()


def _tiles(root: Path, week: str) -> list[str]:
    return sorted(p.name for p in (root / "crop_map").iterdir() if (p / f"{week}.tif").exists())



def _hash(site) -> dict:
    from urllib.parse import parse_qs

    fragment = urlsplit(site.page.url).fragment
    return {k: v[0] for k, v in parse_qs(fragment).items()}


def test_the_address_follows_the_map_back_forward_and_pasted_links(site):
    weeks = site.maps.weeks
    site.show("crop", weeks[-1])
    assert _hash(site)["week"] == weeks[-1] and _hash(site)["layer"] == "crop"
    zoom, lat, lon = (float(v) for v in _hash(site)["map"].split("/"))
    assert 0 < zoom <= 24 and abs(lat) <= 90 and abs(lon) <= 180
    # a week change adds a history entry; going back shows the previous week again
    slider = site.page.get_by_label("Week", exact=True)
    slider.focus()
    slider.press("ArrowLeft")
    state = site.state()
    assert state["week"] == weeks[-2] and _hash(site)["week"] == weeks[-2]
    site.page.go_back()
    site.page.wait_for_function(f"cropmap.state.week === {weeks[-1]!r}")
    state = site.state()
    assert state["week"] == weeks[-1] and state["layerShown"]
    assert site.page.locator("#week-label").inner_text().endswith(f"({weeks[-1]})")
    assert site.page.get_by_label("Week", exact=True).input_value() == str(len(weeks) - 1)
    site.page.go_forward()
    site.page.wait_for_function(f"cropmap.state.week === {weeks[-2]!r}")
    # a layer change is an entry too
    site.page.get_by_label("Confidence", exact=True).check()
    site.state()
    assert _hash(site)["layer"] == "confidence"
    site.page.go_back()
    site.page.wait_for_function("cropmap.state.layer === 'crop'")
    assert site.page.locator("input[name='layer'][value='crop']").is_checked()
    # an edited or pasted hash: the map follows (week, layer and view)
    lon, lat = site.maps.field_point
    site.page.evaluate("(h) => { location.hash = h; }",
                       f"season=2025&week={weeks[0]}&layer=sos&map=13.5/{lat:.5f}/{lon:.5f}")
    site.page.wait_for_function(f"cropmap.state.week === {weeks[0]!r}")
    state = site.state()
    assert state["layer"] == "sos" and state["layerShown"] and state["weekIndex"] == 0
    assert "/layers/sos/" in site.page.locator("#xyz-url").input_value()
    view = site.page.evaluate("[cropmap.map.getZoom(), cropmap.map.getCenter().lat, "
                              "cropmap.map.getCenter().lng]")
    assert view == pytest.approx([13.5, lat, lon], abs=1e-4)
    # panning rewrites the view in place (no new history entry)
    length = site.page.evaluate("history.length")
    site.page.evaluate("cropmap.map.panBy([40, 0], {duration: 0})")
    site.page.wait_for_function(f"!location.hash.includes('/{lon:.5f}')")
    assert site.page.evaluate("history.length") == length
    # a link naming nothing published keeps what is shown, and says it in the address
    site.page.evaluate("location.hash = 'week=1999-01-04&layer=ndvi'")
    site.page.wait_for_function("location.hash.includes('week=' + cropmap.state.week)")
    assert site.state()["week"] == weeks[0] and _hash(site)["layer"] == "sos"


def test_a_link_opens_its_week_layer_and_view(site):
    lon, lat = site.maps.field_point
    week = site.maps.mapped_weeks[0]
    page = site.page.context.browser.new_page(viewport=VIEWPORT)
    try:
        page.goto(f"{site.base}/#week={week}&layer=confidence&map=12/{lat:.5f}/{lon:.5f}")
        page.evaluate("cropmap.ready")
        page.wait_for_function("document.getElementById('map').dataset.state === 'idle'")
        state = page.evaluate("cropmap.state")
        assert state["week"] == week and state["layer"] == "confidence" and state["layerShown"]
        zoom = page.evaluate("cropmap.map.getZoom()")
        assert zoom == pytest.approx(12, abs=1e-3)
        assert page.locator("input[name='layer'][value='confidence']").is_checked()
    finally:
        page.close()


def _open(site, base: str, query: str = "?poll=1"):
    """A second page of the same browser on another tiler, with its errors collected."""
    page = site.page.context.browser.new_page(viewport=VIEWPORT)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(f"pageerror: {e}"))
    page.on("console", lambda m: m.type == "error" and errors.append(f"console: {m.text}"))
    page.goto(f"{base.rstrip('/')}/{query}")
    return page, errors


def _weeks_shown(page) -> list[str]:
    return page.evaluate("cropmap.state.weeks")


def test_weeks_published_while_the_page_is_open_appear(site, tmp_path):
    """The slider grows as weeks are published; a viewer on the newest week follows it, one
    on an older week stays there; a page opened before any week shows the first one."""
    from tiler_server import running_tiler

    root = tmp_path / "data"
    maps = publish_truth_maps(Path(os.environ["CROPASSETS_WORLD"]), root)
    hidden = tmp_path / "hidden"
    hidden.mkdir()
    manifests = {w: root / "week_layers" / f"{w}.json" for w in maps.weeks}
    for w in maps.weeks:
        manifests[w].rename(hidden / f"{w}.json")
    with running_tiler(root) as base:
        page, errors = _open(site, base)
        try:
            page.wait_for_function("document.getElementById('map').dataset.state === 'empty'")
            for w in maps.weeks[:-2]:  # weeks arrive while the page waits for the first
                (hidden / f"{w}.json").rename(manifests[w])
            page.evaluate("cropmap.ready")
            assert _weeks_shown(page) == maps.weeks[:-2]
            assert page.evaluate("cropmap.state.week") == maps.weeks[-3]  # the newest
            assert page.locator("#week-slider").get_attribute("max") == str(len(maps.weeks) - 3)

            (hidden / f"{maps.weeks[-2]}.json").rename(manifests[maps.weeks[-2]])
            page.wait_for_function(f"cropmap.state.weeks.length === {len(maps.weeks) - 1}",
                                   timeout=15_000)
            page.wait_for_function(f"cropmap.state.week === '{maps.weeks[-2]}'")  # followed
            assert page.locator("#week-slider").get_attribute("max") == str(len(maps.weeks) - 2)

            page.evaluate("cropmap.setWeek(0)")  # a viewer on an older week stays there
            (hidden / f"{maps.weeks[-1]}.json").rename(manifests[maps.weeks[-1]])
            page.wait_for_function(f"cropmap.state.weeks.length === {len(maps.weeks)}",
                                   timeout=15_000)
            assert page.evaluate("cropmap.state.week") == maps.weeks[0]
            assert page.evaluate("cropmap.refreshWeeks()") is False  # nothing new
            assert errors == []
        finally:
            page.close()
