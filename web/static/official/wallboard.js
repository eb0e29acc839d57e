// The control room's wallboard: crowding frames from /ws/wallboard (at least one a second),
// drawn as KPIs, a district summary, an SVG chart of check-ins per minute over the last hour,
// the most crowded venues, every active venue's level, advice, and a ticker of abnormal
// arrivals (masked by the server). Reconnects by itself; marks the picture stale when frames
// stop coming.
import { el, statusLabel, t } from "/static/common.js";

const BACKOFF_MS = [500, 1000, 2000, 4000, 8000];
const STALE_MS = 3000; // frames come every ~0.5 s: 3 s without one means the data is old
const TOP = 8; // what fits beside the chart at 1080 lines
const GRID = 60; // venue tiles on the level grid
const STOP_CODES = { 4401: "closed_4401", 4403: "wb_closed_4403" };
const SVG = "http://www.w3.org/2000/svg";

const $ = (id) => document.getElementById(id);
const api = { frames: 0, connected: false, last: null };
window.scanbook = api;

// ---- small helpers ------------------------------------------------------------------------

function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  for (const child of children) {
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function levelText(level) {
  return t(`wb_level_${level}`);
}

function clock(iso) {
  return typeof iso === "string" ? iso.slice(11, 19) : "";
}

function fill(template, values) {
  return Object.entries(values).reduce((text, [key, value]) =>
    text.replaceAll(`{${key}}`, value), template);
}

function setEmpty(listId, emptyId, items) {
  $(emptyId).hidden = items.length > 0;
  $(listId).hidden = items.length === 0;
}

// ---- the chart: check-ins per minute over the last hour ----------------------------------

// Gridlines at a round step (1, 2 or 5 × 10ⁿ), about four of them, always whole numbers.
function scale(max) {
  const rough = Math.max(max, 4) / 4;
  const power = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= rough);
  return { step, top: Math.ceil(Math.max(max, 4) / step) * step };
}

function drawChart(series) {
  const box = $("wb-chart");
  const width = 900;
  const height = 300;
  const pad = { left: 56, right: 12, top: 12, bottom: 34 };
  const plotW = width - pad.left - pad.right;
  const plotH = height - pad.top - pad.bottom;
  const { step, top } = scale(Math.max(0, ...series.map((m) => m.count)));
  const y = (value) => pad.top + plotH - (value / top) * plotH;
  const slot = plotW / Math.max(series.length, 1);
  const total = series.reduce((sum, m) => sum + m.count, 0);
  const peak = Math.max(0, ...series.map((m) => m.count));
  const label = fill(t("wb_chart_label"), { total, peak });

  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img",
    "aria-label": label, class: "chart" });
  chart.append(svg("title", {}, label));
  for (let value = 0; value <= top; value += step) {
    chart.append(svg("line", { x1: pad.left, x2: width - pad.right, y1: y(value), y2: y(value),
      class: value ? "grid" : "axis" }));
    chart.append(svg("text", { x: pad.left - 8, y: y(value) + 5, class: "tick",
      "text-anchor": "end" }, value));
  }
  series.forEach((minute, index) => {
    const x = pad.left + index * slot + 1;
    const w = Math.max(slot - 2, 1);
    const current = index === series.length - 1;
    if (minute.count) {
      chart.append(svg("rect", { x, y: y(minute.count), width: w,
        height: y(0) - y(minute.count), class: current ? "bar bar-now" : "bar" }));
    }
    if (minute.alerts) {
      chart.append(svg("rect", { x, y: y(minute.alerts), width: w,
        height: y(0) - y(minute.alerts), class: "bar-alert" }));
    }
    const at = clock(minute.at).slice(0, 5);
    if (index % 10 === 0 || current) {
      chart.append(svg("text", { x: x + w / 2, y: height - 10, class: "tick",
        "text-anchor": current ? "end" : "middle" }, current ? t("wb_now") : at));
    }
  });
  box.replaceChildren(chart);
}

// ---- panels -------------------------------------------------------------------------------

function drawKpis(frame) {
  $("kpi-rate").textContent = frame.scans_per_min;
  $("kpi-alerts").textContent = frame.alerts_last_hour;
  $("kpi-venues").textContent = frame.venues_active ?? frame.venues.length;
  $("kpi-venues-l").textContent = fill(t("wb_active_venues"), { m: frame.window_minutes ?? 15 });
  const count = (level) => (frame.districts || []).reduce((sum, d) => sum + (d[level] || 0), 0);
  $("kpi-busy").textContent = count("busy");
  $("kpi-crowded").textContent = count("crowded");
  $("wb-clock").textContent = clock(frame.at);
}

function drawDistricts(districts) {
  const body = $("wb-district-table").tBodies[0];
  body.replaceChildren(...districts.map((d) => el("tr", { class: `level-${d.level}`,
    dataset: { district: d.district } },
    el("th", { scope: "row" }, el("span", { class: `dot dot-${d.level}`,
      title: levelText(d.level) }), d.district),
    el("td", { class: "num" }, d.venues), el("td", { class: "num" }, d.recent),
    el("td", { class: "num busy-n" }, d.busy || "–"),
    el("td", { class: "num crowded-n" }, d.crowded || "–"))));
  $("wb-districts-empty").hidden = districts.length > 0;
  $("wb-district-table").hidden = districts.length === 0;
}

function loadBar(venue) {
  const bar = el("span", { class: `load load-${venue.level}` });
  bar.style.width = `${Math.min(100, Math.round(venue.load * 100))}%`; // CSSOM: CSP-safe
  return el("span", { class: "load-track", "aria-hidden": "true" }, bar);
}

function capacityText(venue) {
  return venue.capacity ? fill(t("wb_of_capacity"), { recent: venue.recent,
    capacity: venue.capacity, pct: Math.round(venue.load * 100) })
    : fill(t("wb_no_capacity"), { recent: venue.recent, rate: venue.rate_per_min });
}

function drawTop(venues) {
  const top = venues.slice(0, TOP);
  $("wb-top-list").replaceChildren(...top.map((v, index) => el("li", {
    class: `top-item level-${v.level}`, dataset: { venueId: v.venue_id, level: v.level } },
    el("span", { class: "rank" }, index + 1),
    el("span", { class: "top-name" }, v.name, el("span", { class: "top-district" }, v.district)),
    el("span", { class: `level-badge badge-${v.level}` }, levelText(v.level)),
    loadBar(v),
    el("span", { class: "top-figures" }, capacityText(v)))));
  setEmpty("wb-top-list", "wb-top-empty", top);
}

function drawGrid(venues) {
  const tiles = venues.slice(0, GRID);
  $("wb-venue-grid").replaceChildren(...tiles.map((v) => el("li", {
    class: `tile-v badge-${v.level}`, dataset: { venueId: v.venue_id, level: v.level },
    title: `${v.name} · ${v.district} · ${levelText(v.level)}` },
    el("span", { class: "tile-name" }, v.name),
    el("span", { class: "tile-figure" }, v.capacity ? `${v.recent}/${v.capacity}` : `${v.recent}`,
       " · ", levelText(v.level)))));
  setEmpty("wb-venue-grid", "wb-levels-empty", tiles);
}

function adviceText(a) {
  const values = { name: a.name, district: a.district, rate: a.rate_per_min, codes: a.codes,
    add: a.add, need: a.codes_needed };
  if (a.kind === "more_codes") {
    const text = fill(t("wb_advice_more_codes"), values);
    return a.level === "crowded" ? `${text}${t("wb_advice_and_limit")}` : text;
  }
  return fill(t("wb_advice_limit_entry"), values);
}

function drawAdvice(advice) {
  $("wb-advice-list").replaceChildren(...advice.map((a) => el("li", {
    class: `advice-item advice-${a.kind} level-${a.level}`,
    dataset: { venueId: a.venue_id, kind: a.kind } }, adviceText(a))));
  setEmpty("wb-advice-list", "wb-advice-empty", advice);
}

const seenAlerts = new Set();
let firstTicker = true;

function drawTicker(ticker) {
  $("wb-ticker-list").replaceChildren(...ticker.map((a) => {
    const fresh = !firstTicker && !seenAlerts.has(a.id);
    seenAlerts.add(a.id);
    return el("li", { class: `tick-item tick-${a.status}${fresh ? " fresh" : ""}`,
      dataset: { id: a.id, status: a.status } },
      el("span", { class: "tick-time" }, clock(a.at)),
      el("span", { class: `tick-status badge-status-${a.status}`, title: statusLabel(a.status) },
         t(`wb_status_${a.status}`)),
      el("span", { class: "tick-who" }, a.name, " ", el("span", { class: "mono" }, a.id_number)),
      el("span", { class: "tick-where" }, a.venue_name || `#${a.venue_id}`,
         a.district ? ` · ${a.district}` : ""));
  }));
  firstTicker = false;
  setEmpty("wb-ticker-list", "wb-ticker-empty", ticker);
}

function draw(frame) {
  drawKpis(frame);
  drawDistricts(frame.districts || []);
  drawChart(frame.series || []);
  drawTop(frame.venues);
  drawGrid(frame.venues);
  drawAdvice(frame.advice || []);
  drawTicker(frame.ticker || []);
}

// ---- connection ---------------------------------------------------------------------------

function setConn(state) {
  const node = $("wb-conn");
  node.dataset.state = state;
  node.textContent = t(state === "stale" ? "wb_stale" : state);
  document.body.classList.toggle("stale", state === "stale" || state === "reconnecting");
}

let attempt = 0;
let staleTimer = null;
let pending = null;

function armStale() {
  clearTimeout(staleTimer);
  staleTimer = setTimeout(() => setConn("stale"), STALE_MS);
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}/ws/wallboard`);
  socket.addEventListener("message", (event) => {
    let frame;
    try {
      frame = JSON.parse(event.data);
    } catch {
      return;
    }
    if (frame.type !== "crowding") return;
    attempt = 0;
    api.connected = true;
    api.frames += 1;
    api.last = frame;
    setConn("connected");
    armStale();
    // Draw once per animation frame, whatever the rate frames arrive at.
    if (!pending) requestAnimationFrame(() => { draw(pending); pending = null; });
    pending = frame;
  });
  socket.addEventListener("close", (event) => {
    api.connected = false;
    clearTimeout(staleTimer);
    const stop = STOP_CODES[event.code];
    if (stop) {
      setConn("disconnected");
      const box = $("wb-closed");
      box.replaceChildren(t(stop), " ", el("a", { href: `/login?next=${encodeURIComponent(
        location.pathname)}` }, t("sign_in")));
      box.hidden = false;
      return;
    }
    setConn("reconnecting");
    setTimeout(connect, BACKOFF_MS[Math.min(attempt, BACKOFF_MS.length - 1)]);
    attempt += 1;
  });
}

$("wb-fullscreen").addEventListener("click", () => {
  if (document.fullscreenElement) document.exitFullscreen();
  else document.documentElement.requestFullscreen().catch(() => {});
});
document.addEventListener("fullscreenchange", () => {
  $("wb-fullscreen").textContent = t(document.fullscreenElement ? "wb_exit_fullscreen"
    : "wb_fullscreen");
});

connect();
