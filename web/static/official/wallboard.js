// The control room's wallboard: crowding frames from /ws/wallboard (at least one a second),
// drawn as KPIs, a map of the sixteen districts coloured by crowding (pick one to filter),
// every active venue ranked most crowded first (a page at a time, rotating), advice, and a
// ticker of abnormal arrivals (masked by the server). Reconnects by itself; marks the picture stale when frames
// stop coming.
import { el, statusLabel, t } from "/static/common.js";

const BACKOFF_MS = [500, 1000, 2000, 4000, 8000];
const STALE_MS = 3000; // frames come every ~0.5 s: 3 s without one means the data is old
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

// ---- the map: Beijing's sixteen districts, one tile each, placed as on the map ----------

const CELL = { w: 146, h: 116, gap: 8 };
// English names too long for one tile at 28 px, split where a reader expects it.
const SPLIT = { Mentougou: ["Mentou-", "gou"], Shijingshan: ["Shijing-", "shan"],
  Dongcheng: ["Dong-", "cheng"], Chaoyang: ["Chao-", "yang"] };
// [district, column, row, columns wide]: north at the top, the centre (东城, 西城) in the middle.
const TILES = [
  ["延庆区", 0, 0, 1], ["怀柔区", 2, 0, 1], ["密云区", 3, 0, 2],
  ["昌平区", 0, 1, 2], ["顺义区", 3, 1, 1], ["平谷区", 4, 1, 1],
  ["门头沟区", 0, 2, 1], ["海淀区", 1, 2, 1], ["西城区", 2, 2, 1], ["东城区", 3, 2, 1],
  ["朝阳区", 4, 2, 1],
  ["石景山区", 0, 3, 1], ["丰台区", 1, 3, 2], ["通州区", 3, 3, 2],
  ["房山区", 0, 4, 2], ["大兴区", 2, 4, 2],
];
const config = JSON.parse($("wb-config").textContent);
const lang = document.documentElement.lang.startsWith("zh") ? "zh" : "en";
const english = Object.fromEntries(config.districts);

function shortName(district) {
  if (lang === "en") return english[district] || district;
  return district.length > 2 ? district.replace(/区$/, "") : district;
}

function nameLines(name, span) {
  return span === 1 && SPLIT[name] ? SPLIT[name] : [name];
}

function drawMap(districts) {
  const byName = Object.fromEntries(districts.map((d) => [d.district, d]));
  const width = 5 * CELL.w + 4 * CELL.gap;
  const height = 5 * CELL.h + 4 * CELL.gap;
  const map = svg("svg", { viewBox: `0 0 ${width} ${height}`, width, height, role: "group",
    "aria-label": t("wb_map"), class: "map" });
  for (const [district, col, row, span] of TILES) {
    const d = byName[district];
    const lvl = d ? d.level : "idle";
    const x = col * (CELL.w + CELL.gap);
    const y = row * (CELL.h + CELL.gap);
    const w = span * CELL.w + (span - 1) * CELL.gap;
    const figure = !d ? "–" : d.crowded ? fill(t("wb_map_crowded"), { n: d.crowded })
      : d.busy ? fill(t("wb_map_busy"), { n: d.busy }) : fill(t("wb_map_figure"), { n: d.venues });
    const label = d ? fill(t("wb_map_label"), { district: shortName(district),
      level: levelText(d.level), venues: d.venues, busy: d.busy, crowded: d.crowded })
      : `${shortName(district)}: ${t("wb_idle")}`;
    const tile = svg("g", { class: `map-district level-${lvl}${filter === district ? " selected" : ""}`,
      "data-district": district, "data-level": lvl, role: "button", tabindex: 0,
      "aria-label": label, "aria-pressed": String(filter === district) },
    svg("title", {}, label),
    svg("rect", { x, y, width: w, height: CELL.h, rx: 14 }),
    ...nameLines(shortName(district), span).map((line, index, lines) => svg("text", {
      x: x + w / 2, y: y + (lines.length > 1 ? 34 + index * 32 : 46), "text-anchor": "middle",
      class: "map-name" }, line)),
    svg("text", { x: x + w / 2, y: y + 100, "text-anchor": "middle", class: "map-figure" },
      figure));
    const choose = () => setFilter(filter === district ? "" : district);
    tile.addEventListener("click", choose);
    tile.addEventListener("keydown", (event) => {
      if (event.key === "Enter" || event.key === " ") {
        event.preventDefault();
        choose();
      }
    });
    map.append(tile);
  }
  $("wb-map").replaceChildren(map);
}

// ---- the ranking: every active venue, a page at a time, rotating ------------------------

const ROTATE_MS = 10000; // a page stays this long before the next comes round
let filter = "";
let pageIndex = 0;
let rowsPerPage = 9; // measured from the list's height once rows exist
let rotateTimer = null;
let lastFrame = null;

// a venue's level is the people inside (its open stays) against its capacity
function capacityText(venue) {
  return venue.capacity ? `${venue.occupancy}/${venue.capacity}` : `${venue.occupancy}`;
}

function ranked() {
  const venues = lastFrame ? lastFrame.venues : [];
  return filter ? venues.filter((v) => v.district === filter) : venues;
}

function measureRows() {
  const list = $("wb-top-list");
  const row = list.querySelector("li");
  if (!row) return;
  const gap = parseFloat(getComputedStyle(list).rowGap) || 0;
  const fits = Math.floor((list.clientHeight + gap) / (row.getBoundingClientRect().height + gap));
  if (fits > 0 && fits !== rowsPerPage) {
    rowsPerPage = fits;
    drawTop();
  }
}

function drawTop() {
  const venues = ranked();
  const pages = Math.max(1, Math.ceil(venues.length / rowsPerPage));
  pageIndex = Math.min(pageIndex, pages - 1);
  const first = pageIndex * rowsPerPage;
  const shown = venues.slice(first, first + rowsPerPage);
  $("wb-top-list").replaceChildren(...shown.map((v, index) => el("li", {
    class: `top-item level-${v.level}`, dataset: { venueId: v.venue_id, level: v.level,
      district: v.district } },
    el("span", { class: "rank" }, first + index + 1),
    el("span", { class: "top-name", title: `${v.name} · ${v.district}` }, v.name),
    el("span", { class: "top-district" }, filter ? "" : shortName(v.district)),
    el("span", { class: "top-figures" }, capacityText(v)),
    el("span", { class: `level-badge badge-${v.level}` }, levelText(v.level)))));
  setEmpty("wb-top-list", "wb-top-empty", shown);
  $("wb-page").textContent = fill(t("wb_page"), { page: pageIndex + 1, pages, n: venues.length });
  $("wb-prev").disabled = pages < 2;
  $("wb-next").disabled = pages < 2;
  api.page = { index: pageIndex, pages, rows: shown.length, total: venues.length, filter };
}

function turn(step) {
  const pages = Math.max(1, Math.ceil(ranked().length / rowsPerPage));
  pageIndex = (pageIndex + step + pages) % pages;
  drawTop();
}

function rotate() {
  clearInterval(rotateTimer);
  rotateTimer = setInterval(() => turn(1), ROTATE_MS);
}

function setFilter(district) {
  filter = district;
  pageIndex = 0;
  $("wb-district-filter").value = district;
  if (lastFrame) {
    drawMap(lastFrame.districts || []);
    drawTop();
  }
  rotate();
}

$("wb-district-filter").addEventListener("change", (event) => setFilter(event.target.value));
$("wb-prev").addEventListener("click", () => { turn(-1); rotate(); });
$("wb-next").addEventListener("click", () => { turn(1); rotate(); });
window.addEventListener("resize", measureRows);

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

function adviceText(a) {
  const values = { rate: a.rate_per_min, codes: a.codes, add: a.add, need: a.codes_needed };
  if (a.kind === "more_codes") {
    const text = fill(t("wb_advice_more_codes"), values);
    return a.level === "crowded" ? `${text}${t("wb_advice_and_limit")}` : text;
  }
  return t("wb_advice_limit_entry");
}

function drawAdvice(advice) {
  $("wb-advice-list").replaceChildren(...advice.map((a) => el("li", {
    class: `advice-item advice-${a.kind} level-${a.level}`,
    dataset: { venueId: a.venue_id, kind: a.kind } },
  el("span", { class: "advice-name" }, `${a.name}（${shortName(a.district)}）`), " ",
  adviceText(a))));
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
      el("span", { class: "tick-time" }, clock(a.at).slice(0, 5)),
      el("span", { class: `tick-status badge-status-${a.status}`, title: statusLabel(a.status) },
         t(`wb_status_${a.status}`)),
      el("span", { class: "tick-who" }, a.name, " · ", a.venue_name || `#${a.venue_id}`));
  }));
  firstTicker = false;
  setEmpty("wb-ticker-list", "wb-ticker-empty", ticker);
}

function draw(frame) {
  lastFrame = frame;
  drawKpis(frame);
  drawMap(frame.districts || []);
  drawTop();
  drawAdvice(frame.advice || []);
  drawTicker(frame.ticker || []);
  measureRows();
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

rotate();
connect();

document.documentElement.dataset.ready = "true"; // listeners attached (tests wait for it)
