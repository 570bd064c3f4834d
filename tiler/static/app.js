// Web map of the weekly crop-type maps (served by the tiler at "/").
//
// Plain ES module, no build step: MapLibre GL JS is served by the tiler from
// node_modules/maplibre-gl/dist at static/maplibre/. Nothing is fetched from anywhere but
// the tiler: the style has no basemap, no glyphs and no sprites.
//
// API (docs/CONTRACTS.md "Tiler HTTP API"): api/weeks, api/legend, api/point, the layers'
// TileJSON and the COG downloads. Test hooks: window.cropmap and data-* attributes on #map.

import { Map as MapLibreMap, NavigationControl, Popup, ScaleControl } from "./maplibre/maplibre-gl.mjs";

const LAYERS = ["crop", "confidence", "sos", "coverage"];
const LAYER_TITLES = { crop: "Crop type", confidence: "Confidence", sos: "Start of season (SOS)", coverage: "Coverage" };
const PRODUCT_TITLES = { crop: "crop type (class + confidence bands)", sos: "start of season (day of year)", coverage: "coverage (observation counts)" };
const BACKGROUND = "#f2f0eb";
// the model that made a week's crop map (manifest "model.kind"; docs/CONTRACTS.md)
const MODEL_TITLES = { cnn2d: "CNN2D", random_forest: "random forest", combination: "CNN2D + random forest" };
const DATA_ID = "data";

const $ = (id) => document.getElementById(id);
const el = (tag, props = {}, ...children) => {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === "dataset") Object.assign(node.dataset, v);
    else if (k in node) node[k] = v;
    else node.setAttribute(k, v);
  }
  for (const child of children) node.append(child);
  return node;
};
/** URL of an API path relative to the page (works behind a path prefix too). */
const apiUrl = (path) => new URL(path, document.baseURI).href;

async function getJSON(url) {
  const res = await fetch(url, { headers: { accept: "application/json" } });
  if (!res.ok) {
    let detail = "";
    try { detail = (await res.json()).detail; } catch { /* not JSON */ }
    throw new Error(`${res.status} ${detail || res.statusText} (${url})`);
  }
  return res.json();
}

// ---------------------------------------------------------------- normalising the API

/** A week of /api/weeks as the page uses it. */
function normWeek(w, season) {
  const layersIn = w.layers || {};
  const available = w.available ?? Boolean(layersIn.crop);
  const layers = {
    crop: Boolean(layersIn.crop ?? available),
    confidence: Boolean(layersIn.confidence ?? layersIn.crop ?? available),
    sos: Boolean(layersIn.sos ?? true),
    coverage: Boolean(layersIn.coverage),
  };
  const kneeWeek = w.knee_week ?? season.knee_week ?? null;
  const index = w.week_of_season ?? w.index ?? null;
  return {
    key: w.week ?? w.id ?? w.key,
    index,
    available: Boolean(available),
    preliminary: Boolean(w.preliminary ?? (kneeWeek == null || (index != null && index < kneeWeek))),
    kneeWeek,
    reason: w.reason || "",
    model: w.model || null,
    // which weeks behind the maps had no Sentinel-1 (manifest "radar"; null: not recorded)
    radar: w.radar || null,
    // only a manifest that names its model (older ones were all CNN2D maps) labels the week
    modelKind: (w.model && w.model.kind) || null,
    layers,
    tilejson: normTileJSONRefs(w.tilejson),
    downloads: normDownloads(w.downloads),
    // the whole region of each product (VRT) and the QGIS style of each layer (.qml)
    regions: w.regions || {},
    styles: w.styles || {},
    stac: w.stac || null,
    sosRange: w.sos_range || null,
    coverageRange: w.coverage_range || null,
    lastObservation: w.last_observation_date || null,
    season,
  };
}

/** {layer: TileJSON URL} from a dict, a single URL with "{layer}", or nothing. */
function normTileJSONRefs(ref) {
  const out = {};
  if (!ref) return out;
  if (typeof ref === "string") {
    for (const layer of LAYERS) out[layer] = ref.includes("{layer}") ? ref.replace("{layer}", layer) : null;
    return out;
  }
  for (const layer of LAYERS) {
    const v = ref[layer];
    out[layer] = typeof v === "string" ? v : (v && (v.url || v.href)) || null;
  }
  return out;
}

/** [{tile, product, url}] from a list or a dict keyed by tile or by product. */
function normDownloads(d) {
  const out = [];
  if (!d) return out;
  if (Array.isArray(d)) {
    for (const r of d) out.push({ tile: r.tile, product: r.product, url: r.url || r.href });
  } else {
    for (const [k, v] of Object.entries(d)) {
      if (!v) continue;
      if (typeof v === "string") { out.push({ tile: "", product: k, url: v }); continue; }
      const byProduct = k === "crop" || k === "sos" || k === "coverage";
      for (const [k2, url] of Object.entries(v)) {
        const u = typeof url === "string" ? url : url && (url.url || url.href);
        if (!u) continue;
        out.push(byProduct ? { tile: k2, product: k, url: u } : { tile: k, product: k2, url: u });
      }
    }
  }
  out.sort((a, b) => (a.tile + a.product).localeCompare(b.tile + b.product));
  return out;
}

/** An absolute URL template; keeps {z}/{x}/{y} unescaped (new URL() would escape them). */
function absoluteTemplate(t) {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(t)) return t;
  return new URL(t, document.baseURI).href.replace(/%7B/gi, "{").replace(/%7D/gi, "}");
}

function cssColor(c) {
  if (typeof c === "string") return c;
  if (Array.isArray(c)) {
    const [r, g, b, a = 255] = c;
    return `rgba(${r}, ${g}, ${b}, ${a > 1 ? a / 255 : a})`;
  }
  return "transparent";
}

/** Colour stops [{value, color}] of a ramp legend in any of the usual shapes. */
function rampStops(ramp, min, max) {
  if (!ramp) return [];
  const stops = ramp.stops || ramp.colors || ramp.colormap || ramp.palette;
  if (Array.isArray(stops) && stops.length) {
    if (Array.isArray(stops[0]) && stops[0].length === 2 && !Array.isArray(stops[0][0])
        && (typeof stops[0][1] === "string" || Array.isArray(stops[0][1]))) {
      return stops.map(([value, color]) => ({ value, color: cssColor(color) }));
    }
    if (typeof stops[0] === "object" && !Array.isArray(stops[0]) && "color" in stops[0]) {
      return stops.map((s) => ({ value: s.value, color: cssColor(s.color) }));
    }
    const n = stops.length;
    return stops.map((c, i) => ({ value: min + ((max - min) * i) / Math.max(1, n - 1), color: cssColor(c) }));
  }
  if (stops && typeof stops === "object") {
    return Object.entries(stops).map(([v, c]) => ({ value: Number(v), color: cssColor(c) }))
      .sort((a, b) => a.value - b.value);
  }
  return [];
}

function rampRange(ramp, fallback) {
  const r = ramp && (ramp.range || ramp.rescale || ramp.domain);
  if (Array.isArray(r) && r.length === 2) return r.map(Number);
  if (ramp && ramp.min != null && ramp.max != null) return [Number(ramp.min), Number(ramp.max)];
  return fallback;
}

const capitalised = (t) => t.charAt(0).toUpperCase() + t.slice(1);

function doyToDate(year, doy) {
  const d = new Date(Date.UTC(Number(year), 0, 1));
  d.setUTCDate(d.getUTCDate() + Number(doy) - 1);
  return d.toISOString().slice(0, 10);
}

// ---------------------------------------------------------------- state

const state = {
  weeksDoc: null,
  legend: null,
  seasons: [],
  seasonIndex: 0,
  weekIndex: 0,
  layer: "crop",
  map: null,
  popup: null,
  renderToken: 0,
  rendering: Promise.resolve(),
};

const currentSeason = () => state.seasons[state.seasonIndex];
const currentWeek = () => currentSeason()?.weeks[state.weekIndex] ?? null;

// ---------------------------------------------------------------- the address is the state
//
// #season=2025&week=2025-05-19&layer=crop&map=12.00/14.64407/100.11529 (zoom/lat/lon).
// Week, season and layer changes add a history entry; panning and zooming replace the
// current one. A changed hash (back/forward, a pasted or edited link) is applied.

function readHash() {
  const p = new URLSearchParams(location.hash.slice(1));
  return { season: p.get("season"), week: p.get("week"), layer: p.get("layer"), view: parseView(p.get("map")) };
}

/** {zoom, lat, lon} of "zoom/lat/lon", or null when it is not a valid view. */
function parseView(text) {
  const parts = (text || "").split("/").map(Number);
  if (parts.length !== 3 || !parts.every(Number.isFinite)) return null;
  const [zoom, lat, lon] = parts;
  if (zoom < 0 || zoom > 24 || Math.abs(lat) > 85.06 || Math.abs(lon) > 180) return null;
  return { zoom, lat, lon };
}

function stateHash() {
  const w = currentWeek();
  const parts = [["season", currentSeason().id], ["week", w.key], ["layer", state.layer]]
    .map(([k, v]) => `${k}=${encodeURIComponent(v)}`);
  if (state.map) {
    const c = state.map.getCenter();
    parts.push(`map=${state.map.getZoom().toFixed(2)}/${c.lat.toFixed(5)}/${c.lng.toFixed(5)}`);
  }
  return `#${parts.join("&")}`;
}

/** Write the state to the address: "push" adds a history entry, "replace" does not. */
function writeHash(mode = "replace") {
  if (!currentWeek()) return;
  const hash = stateHash();
  if (hash === location.hash) return;
  if (mode === "push") history.pushState(null, "", hash);
  else history.replaceState(null, "", hash);
}

/** Season and week index named by a hash (a week alone finds its season); -1 if none. */
function locateWeek(h) {
  let si = state.seasons.findIndex((s) => s.id === h.season);
  let wi = si < 0 ? -1 : state.seasons[si].weeks.findIndex((w) => w.key === h.week);
  if (wi < 0 && h.week) {
    const found = state.seasons.findIndex((s) => s.weeks.some((w) => w.key === h.week));
    if (found >= 0) { si = found; wi = state.seasons[si].weeks.findIndex((w) => w.key === h.week); }
  }
  return { si, wi };
}

function syncControls() {
  $("season-select").value = String(state.seasonIndex);
  $("week-slider").value = String(state.weekIndex);
  for (const r of document.querySelectorAll('input[name="layer"]')) r.checked = r.value === state.layer;
}

/** Follow a changed hash (back/forward, pasted link): week, season, layer and view. */
function applyHash() {
  if (!state.map || !state.seasons.length) return null;
  const h = readHash();
  const { si, wi } = locateWeek(h);
  let changed = false;
  if (si >= 0 && si !== state.seasonIndex) {
    state.seasonIndex = si;
    fillWeekSlider();
    changed = true;
  }
  if (wi >= 0 && wi !== state.weekIndex) { state.weekIndex = wi; changed = true; }
  if (LAYERS.includes(h.layer) && h.layer !== state.layer) { state.layer = h.layer; changed = true; }
  syncControls();
  if (h.view) {
    const c = state.map.getCenter();
    if (Math.abs(state.map.getZoom() - h.view.zoom) > 0.005 || Math.abs(c.lat - h.view.lat) > 1e-5
        || Math.abs(c.lng - h.view.lon) > 1e-5) {
      state.map.jumpTo({ center: [h.view.lon, h.view.lat], zoom: h.view.zoom });
    }
  }
  if (changed) return render("replace");
  writeHash("replace"); // a hash naming nothing published: show what is shown
  return state.rendering;
}

function setStatus(text, kind = "info") {
  const s = $("status");
  s.textContent = text;
  s.dataset.kind = kind;
}

// ---------------------------------------------------------------- controls

function fillSeasons() {
  const select = $("season-select");
  select.replaceChildren(...state.seasons.map((s, i) => el("option", {
    value: String(i), textContent: `${s.id}${s.role ? ` (${s.role})` : ""}`,
  })));
  select.value = String(state.seasonIndex);
  $("season-control").hidden = state.seasons.length < 2;
}

function fillWeekSlider() {
  const slider = $("week-slider");
  const n = currentSeason().weeks.length;
  slider.min = "0";
  slider.max = String(Math.max(0, n - 1));
  slider.value = String(state.weekIndex);
  slider.disabled = n < 2;
}

/** " Made without radar ..." when weeks behind the map had no Sentinel-1 ("" otherwise). */
function radarNote(w) {
  const r = w && w.radar;
  if (!r || r.summary === "all weeks" || r.summary === "unknown") return "";
  if (r.summary === "no week") return " Made without radar (Sentinel-2 only).";
  const n = (r.weeks_without_radar || []).length;
  return ` Made without radar in ${n} week${n === 1 ? "" : "s"} (${r.summary}).`;
}

/** Name of the model that made the week's crop map ("" when the manifest does not say). */
function modelTitle(w) {
  if (!w || !w.available || !w.modelKind) return "";
  return (w.model && w.model.title) || MODEL_TITLES[w.modelKind] || w.modelKind;
}

function weekLabel(w) {
  const model = modelTitle(w);
  return `week ${w.index ?? "?"}${model ? ` · ${model}` : ""} (${w.key})`;
}

function updateWeekInfo() {
  const w = currentWeek();
  const slider = $("week-slider");
  const label = weekLabel(w);
  $("week-label").textContent = label;
  slider.setAttribute("aria-valuetext", label);
  const badge = $("week-badge");
  const info = $("week-state");
  if (!w.available) {
    badge.textContent = "not available";
    badge.dataset.kind = "unavailable";
    info.textContent = `Crop map not available for this week${w.reason ? `: ${w.reason}` : ""}.`
      + (w.layers.sos ? " The start-of-season (SOS) layer is available." : "");
  } else {
    const model = modelTitle(w);
    const acc = w.model && w.model.accuracy != null
      ? ` Model${model ? ` (${model})` : ""} accuracy ${Math.round(w.model.accuracy * 100)} %` : "";
    const cur = w.model && w.model.current_season_accuracy != null
      ? ` (current season ${Math.round(w.model.current_season_accuracy * 100)} %)` : "";
    const radar = radarNote(w);
    if (w.preliminary) {
      badge.textContent = "preliminary";
      badge.dataset.kind = "preliminary";
      info.textContent = `Preliminary: week ${w.index} is before the knee week`
        + `${w.kneeWeek != null ? ` (${w.kneeWeek})` : ""}; the map still improves as the season goes on.`
        + (acc ? `${acc}${cur}.` : "") + radar;
    } else {
      badge.textContent = "";
      badge.dataset.kind = "final";
      info.textContent = (acc ? `${acc.trim()}${cur}.` : "") + radar;
    }
  }
  if (w.lastObservation) info.append(el("br"), `Observations up to ${w.lastObservation}.`);
  const m = $("map");
  Object.assign(m.dataset, {
    season: currentSeason().id,
    week: w.key,
    weekIndex: String(state.weekIndex),
    weekOfSeason: String(w.index ?? ""),
    available: String(w.available),
    preliminary: String(w.preliminary),
    modelKind: w.available && w.modelKind ? w.modelKind : "",
    layer: state.layer,
  });
}

function legendSwatch(color) {
  return el("span", { className: "swatch", style: `background:${color}`, "aria-hidden": "true" });
}

function rampLegend(stops, ticks, caption) {
  const gradient = stops.length
    ? `linear-gradient(to right, ${stops.map((s) => s.color).join(", ")})`
    : "linear-gradient(to right, #eee, #333)";
  return el("div", { className: "ramp" },
    el("div", { className: "ramp-bar", style: `background:${gradient}`, role: "img", "aria-label": caption }),
    el("div", { className: "ramp-ticks" }, ...ticks.map((t) => el("span", { textContent: t }))),
    el("p", { className: "ramp-caption", textContent: caption }));
}

function updateLegend() {
  const box = $("legend");
  const w = currentWeek();
  const legend = state.legend || {};
  box.dataset.layer = state.layer;
  let content;
  if (state.layer === "crop") {
    const classes = legend.crop || [];
    content = el("ul", { className: "classes" }, ...classes.map((c) => el("li", {
      dataset: { code: String(c.code), color: c.color },
    }, legendSwatch(c.color), el("span", { textContent: c.name }))));
  } else if (state.layer === "confidence") {
    const ramp = legend.confidence;
    const [lo, hi] = rampRange(ramp, [0, 100]);
    content = rampLegend(rampStops(ramp, lo, hi), [`${lo} %`, `${(lo + hi) / 2} %`, `${hi} %`],
      "Probability of the mapped class (softmax × 100)");
  } else if (state.layer === "coverage") {
    const ramp = legend.coverage;
    const [lo, hi] = w.coverageRange || rampRange(ramp, [0, 1]);
    const radar = w.radar ? w.radar.summary : "unknown";
    content = el("div", {},
      rampLegend(rampStops(ramp, lo, hi), [`${lo}`, `${hi}`],
        "Clear optical (Sentinel-2) observations per pixel since the season start"),
      el("p", { className: "legend-radar", dataset: { radar }, textContent: `Radar (Sentinel-1): ${radar === "all weeks" ? "present in every week" : radar}` }));
  } else {
    const ramp = legend.sos;
    const [lo, hi] = w.sosRange || rampRange(ramp, [1, 366]);
    const year = (w.season.start || w.key).slice(0, 4);
    content = rampLegend(rampStops(ramp, lo, hi), [
      `day ${lo} (${doyToDate(year, lo)})`, `day ${hi} (${doyToDate(year, hi)})`,
    ], "Day of year (date) the season started in each field");
  }
  const ramp = state.layer === "crop" ? null : legend[state.layer];
  const title = el("p", { className: "legend-layer", textContent: capitalised(ramp?.title || LAYER_TITLES[state.layer]) });
  box.replaceChildren(title, content);
}

function updateDownloads() {
  const w = currentWeek();
  const list = $("downloads");
  const items = w.downloads.map((d) => el("li", {},
    el("a", {
      href: new URL(d.url, document.baseURI).href,
      download: "",
      textContent: `${d.tile ? `${d.tile}: ` : ""}${PRODUCT_TITLES[d.product] || d.product} (${w.key})`,
      dataset: { tile: d.tile, product: d.product },
    })));
  if (!items.length) items.push(el("li", { textContent: "No files published for this week." }));
  list.replaceChildren(...items);
  updateRegions(w);
}

/** Whole-region VRTs with the QGIS style of each layer drawn from them; the STAC URL. */
function updateRegions(w) {
  const link = (url, text, data) => el("a", {
    href: new URL(url, document.baseURI).href, download: "", textContent: text, dataset: data,
  });
  const styleOf = { crop: ["crop", "confidence"], sos: ["sos"], coverage: ["coverage"] };
  const items = Object.entries(w.regions).map(([product, url]) => el("li", {},
    link(url, `${PRODUCT_TITLES[product] || product}, region (VRT)`, { product, kind: "vrt" }),
    ...(styleOf[product] || [product]).filter((s) => w.styles[s]).flatMap((s) => [
      " · ", link(w.styles[s], `${s} style (QML)`, { style: s, kind: "qml" })])));
  if (!items.length) items.push(el("li", { textContent: "No region file for this week." }));
  $("regions").replaceChildren(...items);
  $("stac-url").value = new URL((w.stac && w.stac.api) || "stac", document.baseURI).href;
}

// ---------------------------------------------------------------- map layers

function layerShown(w, layer) {
  return Boolean(w && w.layers[layer] && (layer === "sos" || layer === "coverage" || w.available));
}

async function tileJSON(w, layer) {
  const url = w.tilejson[layer]
    || `layers/${encodeURIComponent(layer)}/${encodeURIComponent(w.key)}/WebMercatorQuad/tilejson.json`;
  return getJSON(apiUrl(url));
}

function removeDataLayer() {
  const map = state.map;
  if (map.getLayer(DATA_ID)) map.removeLayer(DATA_ID);
  if (map.getSource(DATA_ID)) map.removeSource(DATA_ID);
}

/**
 * Show the selected layer and week; resolves once the map has rendered it.
 * ``history``: "push" (a user's change: a new history entry) or "replace".
 */
function render(history = "push") {
  const token = ++state.renderToken;
  const w = currentWeek();
  const layer = state.layer;
  const m = $("map");
  m.dataset.state = "loading";
  updateWeekInfo();
  updateLegend();
  updateDownloads();
  writeHash(history);
  state.popup?.remove();
  const xyz = $("xyz-url");
  const job = (async () => {
    if (!layerShown(w, layer)) {
      removeDataLayer();
      xyz.value = "";
      xyz.placeholder = `no ${layer} layer for this week`;
      m.dataset.layerShown = "false";
      return;
    }
    const tj = await tileJSON(w, layer);
    if (token !== state.renderToken) return;
    removeDataLayer();
    const tiles = tj.tiles.map(absoluteTemplate);
    const source = { type: "raster", tiles, tileSize: 256 };
    if (Array.isArray(tj.bounds)) source.bounds = tj.bounds;
    if (tj.minzoom != null) source.minzoom = tj.minzoom;
    if (tj.maxzoom != null) source.maxzoom = tj.maxzoom;
    state.map.addSource(DATA_ID, source);
    state.map.addLayer({
      id: DATA_ID,
      type: "raster",
      source: DATA_ID,
      // exact class colours: no smoothing between pixels, no fade between tiles
      paint: { "raster-resampling": "nearest", "raster-fade-duration": 0 },
    });
    xyz.value = tiles[0];
    m.dataset.layerShown = "true";
  })().then(() => waitIdle()).then(() => {
    if (token !== state.renderToken) return;
    m.dataset.state = "idle";
    setStatus(layerShown(w, layer)
      ? `${LAYER_TITLES[layer]}, ${weekLabel(w)}`
      : `${LAYER_TITLES[layer]}: not available for ${weekLabel(w)}`);
  }, (err) => {
    if (token !== state.renderToken) return;
    m.dataset.state = "error";
    setStatus(`Could not load the ${layer} layer of ${w.key}: ${err.message}`, "error");
  });
  state.rendering = job;
  return job;
}

function waitIdle() {
  const map = state.map;
  return new Promise((resolve) => {
    map.once("idle", () => resolve());
    map.triggerRepaint();
  });
}

// ---------------------------------------------------------------- point pop-up

function pickPointRecord(doc, weekKey) {
  if (Array.isArray(doc)) return doc.find((r) => r.week === weekKey) || null;
  if (doc && Array.isArray(doc.weeks)) return doc.weeks.find((r) => r.week === weekKey) || null;
  if (doc && doc.weeks && typeof doc.weeks === "object") return doc.weeks[weekKey] || null;
  return doc;
}

function pointFields(rec) {
  const cls = rec.class && typeof rec.class === "object" ? rec.class : {};
  return {
    code: rec.class_code ?? cls.code ?? rec.code ?? null,
    name: rec.class_name ?? cls.name ?? rec.name ?? null,
    confidence: rec.confidence ?? null,
    sosDoy: rec.sos_doy ?? null,
    sosDate: rec.sos_date ?? null,
    clearSeason: rec.clear_optical_season ?? null,
    clearWeek: rec.clear_optical_week ?? null,
    radarWeek: rec.radar_week ?? null,
    preliminary: rec.preliminary,
  };
}

async function showPoint(lngLat) {
  const w = currentWeek();
  const row = (k, v) => el("div", { className: "row" }, el("dt", { textContent: k }), el("dd", { textContent: v }));
  const box = el("div", { className: "point-info", dataset: { state: "loading" } },
    el("p", { className: "point-title", textContent: `${weekLabel(w)}` }),
    el("p", { textContent: "Loading…" }));
  const popup = new Popup({ closeButton: true, maxWidth: "280px" })
    .setLngLat(lngLat).setDOMContent(box).addTo(state.map);
  state.popup?.remove();
  state.popup = popup;
  const q = new URLSearchParams({ lon: lngLat.lng.toFixed(6), lat: lngLat.lat.toFixed(6), week: w.key });
  const b = state.weeksDoc.bounds;
  const inside = !Array.isArray(b)
    || (lngLat.lng >= b[0] && lngLat.lng <= b[2] && lngLat.lat >= b[1] && lngLat.lat <= b[3]);
  let rec = null;
  let error = "";
  if (inside) {  // outside the data the API answers 404, which the browser logs as an error
    try {
      rec = pickPointRecord(await getJSON(apiUrl(`api/point?${q}`)), w.key);
    } catch (err) {
      error = err.message.startsWith("404") ? "" : err.message;
    }
  }
  if (state.popup !== popup) return;
  const f = rec ? pointFields(rec) : null;
  const dl = el("dl");
  if (!rec && !error) {
    dl.append(row("Class", "outside the mapped area"));
  } else if (f && (f.name != null || f.code != null)) {
    dl.append(row("Class", `${f.name ?? "unknown"}${f.code != null ? ` (code ${f.code})` : ""}`));
    dl.append(row("Confidence", f.confidence != null ? `${Math.round(f.confidence)} %` : "–"));
  } else {
    dl.append(row("Class", w.available ? "no data here" : "not available this week"));
  }
  if (f && (f.sosDate || f.sosDoy)) {
    dl.append(row("SOS", `${f.sosDate ?? ""}${f.sosDoy != null ? ` (day ${f.sosDoy})` : ""}`.trim()));
  } else {
    dl.append(row("SOS", "–"));
  }
  if (f && f.clearSeason != null) {
    dl.append(row("Clear optical", `${f.clearSeason} since the start, ${f.clearWeek} this week`));
    dl.append(row("Radar", f.radarWeek ? `${f.radarWeek} this week` : "none this week"));
  }
  if (f && f.preliminary) dl.append(row("Status", "preliminary"));
  if (error) dl.append(row("Error", error));
  box.replaceChildren(el("p", { className: "point-title", textContent: weekLabel(w) }), dl,
    el("p", { className: "point-where", textContent: `${lngLat.lng.toFixed(5)}, ${lngLat.lat.toFixed(5)}` }));
  Object.assign(box.dataset, {
    state: error ? "error" : "done",
    className: f?.name ?? "",
    classCode: f?.code != null ? String(f.code) : "",
    clearSeason: f?.clearSeason != null ? String(f.clearSeason) : "",
    radarWeek: f?.radarWeek != null ? String(f.radarWeek) : "",
  });
}

// ---------------------------------------------------------------- start-up

/** Seasons with at least one published week, from an /api/weeks document. */
function seasonsOf(weeksDoc) {
  return (weeksDoc.seasons || []).map((s) => {
    const season = { id: String(s.id), start: s.start || "", role: s.role || "", knee_week: weeksDoc.knee_week };
    season.weeks = (s.weeks || []).map((w) => normWeek(w, season));
    return season;
  }).filter((s) => s.weeks.length);
}

const sleep = (ms) => new Promise((resolve) => { setTimeout(resolve, ms); });

// Seconds between two reads of /api/weeks (weeks published while the page is open appear;
// a republished week's new tile URLs are picked up); ``?poll=N`` in the address sets it.
const POLL_SECONDS = Math.max(1, Number(new URLSearchParams(window.location.search).get("poll")) || 30);

/**
 * Read /api/weeks again; when it changed, keep the season and week shown (a viewer on the
 * newest week follows to the new newest week) and redraw. A failed read waits for the next.
 */
async function refreshWeeks() {
  let doc;
  try { doc = await getJSON(apiUrl("api/weeks")); } catch { return false; }
  if (JSON.stringify(doc) === JSON.stringify(state.weeksDoc)) return false;
  const seasons = seasonsOf(doc);
  if (!seasons.length) return false;
  const season = currentSeason();
  const week = currentWeek();
  const onNewest = state.weekIndex === season.weeks.length - 1;
  state.weeksDoc = doc;
  state.seasons = seasons;
  let si = seasons.findIndex((s) => s.id === season.id);
  if (si < 0) si = Math.max(0, seasons.findIndex((s) => s.role === "current"));
  state.seasonIndex = si;
  const weeks = seasons[si].weeks;
  let wi = onNewest ? weeks.length - 1 : weeks.findIndex((w) => w.key === week.key);
  if (wi < 0) wi = weeks.length - 1;
  state.weekIndex = wi;
  fillSeasons();
  fillWeekSlider();
  await render("replace");
  return true;
}

async function pollWeeks() {
  for (;;) {
    await sleep(POLL_SECONDS * 1000);
    await refreshWeeks().catch((err) => setStatus(`Could not refresh the weeks: ${err.message}`, "error"));
  }
}

async function start() {
  let [weeksDoc, legend] = await Promise.all([getJSON(apiUrl("api/weeks")), getJSON(apiUrl("api/legend"))]);
  state.legend = legend;
  state.seasons = seasonsOf(weeksDoc);
  while (!state.seasons.length) {  // nothing published yet: wait for the first week
    setStatus("No week has been published yet; the map appears with the first one.", "error");
    $("map").dataset.state = "empty";
    await sleep(POLL_SECONDS * 1000);
    weeksDoc = await getJSON(apiUrl("api/weeks")).catch(() => weeksDoc);
    state.seasons = seasonsOf(weeksDoc);
    if (state.seasons.length) setStatus("");
  }
  state.weeksDoc = weeksDoc;
  const hash = readHash();
  let { si, wi } = locateWeek(hash);
  if (si < 0) si = state.seasons.findIndex((s) => s.role === "current");
  state.seasonIndex = si < 0 ? state.seasons.length - 1 : si;
  const weeks = currentSeason().weeks;
  if (wi < 0) {
    // newest week with a crop map, else the newest week
    wi = weeks.map((w) => w.available).lastIndexOf(true);
    if (wi < 0) wi = weeks.length - 1;
  }
  state.weekIndex = wi;
  if (LAYERS.includes(hash.layer)) state.layer = hash.layer;
  for (const r of document.querySelectorAll('input[name="layer"]')) r.checked = r.value === state.layer;
  fillSeasons();
  fillWeekSlider();

  const b = weeksDoc.bounds || currentWeek().season.bounds;
  const map = new MapLibreMap({
    container: "map",
    style: {
      version: 8,
      sources: {},
      layers: [{ id: "background", type: "background", paint: { "background-color": BACKGROUND } }],
    },
    ...(hash.view ? { center: [hash.view.lon, hash.view.lat], zoom: hash.view.zoom }
      : { bounds: b, fitBoundsOptions: { padding: 24 } }),
    dragRotate: false,
    pitchWithRotate: false,
    touchPitch: false,
    maxPitch: 0,
  });
  state.map = map;
  map.addControl(new NavigationControl({ showCompass: false }), "top-right");
  map.addControl(new ScaleControl({ unit: "metric" }), "bottom-left");
  map.on("click", (e) => { showPoint(e.lngLat); });
  await new Promise((resolve) => map.once("load", resolve));

  map.on("moveend", () => writeHash("replace"));
  window.addEventListener("hashchange", () => { applyHash(); });
  $("week-slider").addEventListener("input", (e) => { state.weekIndex = Number(e.target.value); render(); });
  $("season-select").addEventListener("change", (e) => {
    state.seasonIndex = Number(e.target.value);
    state.weekIndex = currentSeason().weeks.length - 1;
    fillWeekSlider();
    render();
  });
  for (const r of document.querySelectorAll('input[name="layer"]')) {
    r.addEventListener("change", () => { if (r.checked) { state.layer = r.value; render(); } });
  }
  $("stac-copy").addEventListener("click", async () => {
    const input = $("stac-url");
    input.select();
    try { await navigator.clipboard.writeText(input.value); setStatus("STAC URL copied."); } catch {
      setStatus("Press Ctrl+C to copy the selected URL.");
    }
  });
  $("xyz-copy").addEventListener("click", async () => {
    const input = $("xyz-url");
    input.select();
    try { await navigator.clipboard.writeText(input.value); setStatus("XYZ URL copied."); } catch {
      setStatus("Press Ctrl+C to copy the selected URL.");
    }
  });
  await render("replace");
  pollWeeks();
}

const ready = start().catch((err) => {
  setStatus(`The map could not start: ${err.message}`, "error");
  $("map").dataset.state = "error";
  throw err;
});

window.cropmap = {
  ready,
  get map() { return state.map; },
  get state() {
    const w = currentWeek();
    return {
      season: currentSeason()?.id, weekIndex: state.weekIndex, week: w?.key, layer: state.layer,
      available: w?.available, preliminary: w?.preliminary, layerShown: layerShown(w, state.layer),
      modelKind: w?.available ? w.modelKind : null,
      weeks: currentSeason()?.weeks.map((x) => x.key) ?? [],
    };
  },
  /** Select week ``i`` (0-based) of the season, as the slider does; resolves when rendered. */
  setWeek(i) {
    const n = currentSeason().weeks.length;
    state.weekIndex = Math.max(0, Math.min(n - 1, Number(i)));
    $("week-slider").value = String(state.weekIndex);
    return render();
  },
  /** Select a layer (crop | confidence | sos), as the radio buttons do; resolves when rendered. */
  setLayer(name) {
    if (!LAYERS.includes(name)) throw new Error(`layer ${name} is not one of ${LAYERS.join(", ")}`);
    state.layer = name;
    for (const r of document.querySelectorAll('input[name="layer"]')) r.checked = r.value === name;
    return render();
  },
  /** Read /api/weeks now, as the poll does; resolves true when the weeks changed. */
  refreshWeeks,
  /** Resolves when the map has no pending tiles or transitions. */
  idle: () => state.rendering.then(() => waitIdle()),
};
