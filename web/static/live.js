// The registrar's live page: arrivals from /ws/venues/{id}/feed, newest first; an abnormal
// arrival sounds an ambulance siren, flashes and stays pinned until acknowledged, with what
// staff must do. Only the newest open alert is a full card; older ones collapse into a
// compact stack with a count, so the newest arrival stays in a phone's first screen.
// It reconnects by itself and resumes with the last id it saw (also kept in sessionStorage,
// so a reload shows the same list and misses nothing).
import { clockTime, dayOf, el, popupHint, popupLabel, statusLabel, t } from "./common.js";

const config = JSON.parse(document.getElementById("live-config").textContent);
const STORE_KEY = `scanbook.live.v1.${config.venue_id}`;
const MAX_ITEMS = 200; // what a phone keeps on screen; older arrivals are in the exports
const BACKOFF_MS = [500, 1000, 2000, 4000, 8000, 15000];
const SILENCE_MS = 45000; // the server pings every 20 s: 45 s of silence is a dead link
const SIREN_SECONDS = 3.6; // three wail cycles
const WAIL_CYCLE = 1.2; // seconds for 650 → 1300 → 650 Hz
const STOP_CODES = { 4401: "closed_4401", 4403: "closed_4403", 4404: "closed_4404" };

const $ = (id) => document.getElementById(id);
const list = $("arrivals");
const pinnedBox = $("pinned");

const state = {
  day: config.day,
  lastId: config.start_after,
  items: [], // newest first
  pinned: [], // unacknowledged alerts, newest first
  total: config.total,
  abnormal: config.abnormal,
};
const seen = new Set();
const api = { sirenCount: 0, lastId: state.lastId, connected: false, readyCount: 0,
  filter: "all" };
window.scanbook = api;

// ---- state that survives a reload -------------------------------------------------------

function restore() {
  let saved = null;
  try {
    saved = JSON.parse(sessionStorage.getItem(STORE_KEY) || "null");
  } catch {
    saved = null;
  }
  if (!saved || saved.day !== config.day || !Array.isArray(saved.items)) return false;
  // Ids beyond the server's newest mean the data was reset (a restore, a new database):
  // resuming from them would skip arrivals, so start afresh.
  if (typeof saved.lastId !== "number" || saved.lastId > config.head) return false;
  state.lastId = saved.lastId;
  state.items = saved.items.slice(0, MAX_ITEMS);
  state.pinned = Array.isArray(saved.pinned) ? saved.pinned : [];
  for (const item of state.items) seen.add(item.id);
  // Counts come fresh from the server (they cover everything up to config.head).
  return true;
}

let saveTimer = null;
function save() {
  clearTimeout(saveTimer);
  saveTimer = null;
  try {
    sessionStorage.setItem(STORE_KEY, JSON.stringify({
      day: state.day, lastId: state.lastId, items: state.items, pinned: state.pinned,
    }));
  } catch { /* storage full or disabled: resuming still works within this page */ }
}
function saveSoon() {
  if (!saveTimer) saveTimer = setTimeout(save, 200);
}
window.addEventListener("pagehide", save);

// ---- rendering --------------------------------------------------------------------------

function metaLine(ev) {
  return [clockTime(ev.at), ev.logbook_label, ev.via === "proxy" ? t("via_proxy") : null,
    ev.minor ? t("minor") : null].filter(Boolean).join(" · ");
}

function statusText(ev) {
  return ev.status === "popup" && ev.popup_kind
    ? `${statusLabel(ev.status)} · ${popupLabel(ev.popup_kind)}` : statusLabel(ev.status);
}

function arrivalRow(ev) {
  return el("li", { class: `arrival status-${ev.status}${ev.alert ? " alert" : ""}`,
    dataset: { id: ev.id, status: ev.status } },
    el("span", { class: "badge" }, statusLabel(ev.status),
      ev.popup_kind ? el("small", { class: "badge-kind" }, popupLabel(ev.popup_kind)) : null),
    el("span", { class: "who" },
      el("strong", { class: "name" }, ev.name), " ",
      el("span", { class: "idn" }, ev.id_number)),
    el("span", { class: "meta" }, metaLine(ev)));
}

const lang = document.documentElement.lang.startsWith("zh") ? "zh" : "en";

// What staff do with this status at the door (the status guide's `door.staff`).
function todo(ev) {
  const guide = config.guide?.find((g) => g.status === ev.status
    && (ev.status !== "popup" || g.popup_kind === ev.popup_kind))
    || config.guide?.find((g) => g.status === ev.status);
  return guide?.door?.staff?.[lang] || (ev.popup_kind ? popupHint(ev.popup_kind) : "");
}

function alertCard(ev) {
  return el("article", { class: `alert-card status-${ev.status}`, dataset: { id: ev.id }, role: "alert" },
    el("p", { class: "alert-line" },
      el("span", { class: "alert-status" }, `⚠ ${statusText(ev)}`), " ",
      el("span", { class: "alert-who" }, el("strong", {}, ev.name), " ", ev.id_number)),
    el("p", { class: "alert-meta" }, metaLine(ev)),
    el("p", { class: "alert-todo" }, todo(ev)),
    el("button", { type: "button", class: "ack", onclick: () => acknowledge(ev.id) },
      t("acknowledge")));
}

// Older open alerts: one line each, behind a count; each can be acknowledged on its own.
function alertStack(older) {
  if (!older.length) return null;
  const wasOpen = pinnedBox.querySelector("details.alert-stack")?.open;
  return el("details", { class: "alert-stack", id: "alert-stack", open: wasOpen || null },
    el("summary", {}, t("older_alerts").replace("{n}", older.length)),
    el("ul", {}, ...older.map((ev) => el("li", { class: `stacked status-${ev.status}`,
      dataset: { id: ev.id } },
    el("span", { class: "stacked-text" }, `${statusText(ev)} · ${ev.name} · ${clockTime(ev.at)}`,
      el("small", {}, todo(ev))),
    el("button", { type: "button", class: "button secondary", onclick: () => acknowledge(ev.id) },
      t("acknowledge"))))),
    el("button", { type: "button", class: "button secondary wide", id: "ack-all",
      onclick: acknowledgeOlder }, t("acknowledge_all")));
}

function acknowledgeOlder() {
  state.pinned = state.pinned.slice(0, 1);
  renderPinned();
  save();
}

function renderPinned() {
  const [newest, ...older] = state.pinned;
  pinnedBox.replaceChildren(...[newest ? alertCard(newest) : null, alertStack(older)]
    .filter(Boolean));
  api.openAlerts = state.pinned.length;
  const alarmed = state.pinned.length > 0;
  document.body.classList.toggle("alarm", alarmed);
  document.title = (alarmed ? "⚠ " : "") + document.title.replace(/^⚠ /, "");
}

function renderCounts() {
  $("count-total").textContent = state.total;
  $("count-abnormal").textContent = state.abnormal;
  const abnormalOnly = api.filter === "abnormal";
  $("empty").hidden = abnormalOnly || state.items.length > 0;
  $("empty-abnormal").hidden = !abnormalOnly || state.items.some((item) => item.alert);
}

// "只看异常": the list shows abnormal arrivals only (the counts stay the day's).
const FILTER_KEY = `scanbook.live.filter.${config.venue_id}`;
function setFilter(filter) {
  api.filter = filter;
  const on = filter === "abnormal";
  list.classList.toggle("only-abnormal", on);
  const button = $("filter-abnormal");
  button.setAttribute("aria-pressed", String(on));
  button.textContent = on ? t("filter_all") : t("filter_abnormal");
  try {
    sessionStorage.setItem(FILTER_KEY, filter);
  } catch { /* the filter just does not survive a reload */ }
  renderCounts();
}
$("filter-abnormal").addEventListener("click", () =>
  setFilter(api.filter === "abnormal" ? "all" : "abnormal"));

function renderAll() {
  list.replaceChildren(...state.items.map(arrivalRow));
  renderPinned();
  renderCounts();
}

function acknowledge(id) {
  state.pinned = state.pinned.filter((ev) => ev.id !== id);
  renderPinned();
  save();
}

function setConn(kind) {
  const conn = $("conn");
  conn.dataset.state = kind;
  conn.textContent = t(kind);
}

// ---- the siren ------------------------------------------------------------------------

let audio = null;
let sirenUntil = 0;
let pendingSiren = false;

function audioReady() {
  return audio !== null && audio.state === "running";
}

async function unlockAudio() {
  const Ctx = window.AudioContext || window.webkitAudioContext;
  if (!Ctx) return false;
  if (!audio) audio = new Ctx();
  if (audio.state !== "running") {
    try {
      await audio.resume();
    } catch { /* still locked: the warning stays up */ }
  }
  showSoundState();
  return audioReady();
}

function showSoundState() {
  const on = audioReady();
  $("sound-warning").hidden = on;
  const button = $("enable-sound");
  button.textContent = on ? t("sound_on") : t("enable_sound");
  button.classList.toggle("on", on);
}

function tone(ctx, start, seconds, sweep) {
  const osc = ctx.createOscillator();
  const filter = ctx.createBiquadFilter();
  const gain = ctx.createGain();
  osc.type = "sawtooth";
  filter.type = "lowpass";
  filter.frequency.value = 2600; // takes the harsh edge off the sawtooth, keeps it piercing
  osc.frequency.setValueAtTime(sweep ? 650 : 880, start);
  if (sweep) {
    for (let s = 0; s < seconds - 1e-6; s += WAIL_CYCLE) {
      osc.frequency.linearRampToValueAtTime(1300, start + s + WAIL_CYCLE / 2);
      osc.frequency.linearRampToValueAtTime(650, start + s + WAIL_CYCLE);
    }
  }
  gain.gain.setValueAtTime(0, start);
  gain.gain.linearRampToValueAtTime(0.3, start + 0.04);
  gain.gain.setValueAtTime(0.3, start + seconds - 0.08);
  gain.gain.linearRampToValueAtTime(0, start + seconds);
  osc.connect(filter).connect(gain).connect(ctx.destination);
  osc.start(start);
  osc.stop(start + seconds + 0.05);
}

// One siren at a time: alerts arriving while it wails share it.
function siren() {
  if (!audioReady()) {
    pendingSiren = true;
    showSoundState();
    return false;
  }
  const now = audio.currentTime;
  if (now < sirenUntil) return false;
  pendingSiren = false;
  tone(audio, now + 0.02, SIREN_SECONDS, true);
  sirenUntil = now + SIREN_SECONDS;
  api.sirenCount += 1;
  return true;
}

function alarm() {
  siren();
  navigator.vibrate?.([400, 150, 400, 150, 400]);
}

$("enable-sound").addEventListener("click", async () => {
  if (!(await unlockAudio())) return;
  if (pendingSiren && state.pinned.length) siren();
  else tone(audio, audio.currentTime + 0.02, 0.15, false); // a short chirp: sound works
  try {
    await navigator.wakeLock?.request("screen"); // keep the console phone awake
  } catch { /* not granted: fine */ }
});
// Any tap on the page also unlocks the audio (browsers only allow it after a gesture).
document.addEventListener("pointerdown", () => {
  if (audio && !audioReady()) unlockAudio();
});

// ---- feed events ------------------------------------------------------------------------

let backfill = true; // the first replay of a fresh page: earlier arrivals, no siren

function onCheckin(ev) {
  if (typeof ev.id !== "number" || seen.has(ev.id)) return;
  seen.add(ev.id);
  state.lastId = Math.max(state.lastId, ev.id);
  api.lastId = state.lastId;
  if (ev.id > config.head) {
    const day = dayOf(ev.at);
    if (day > state.day) { // past midnight: "today" starts again
      state.day = day;
      state.total = 0;
      state.abnormal = 0;
    }
    state.total += 1;
    if (ev.alert) state.abnormal += 1;
  }
  // Newest first; feeds arrive in id order, so this is almost always the front.
  let index = state.items.findIndex((item) => item.id < ev.id);
  if (index === -1) index = state.items.length;
  state.items.splice(index, 0, ev);
  const row = arrivalRow(ev);
  list.insertBefore(row, list.children[index] || null);
  while (state.items.length > MAX_ITEMS) {
    state.items.pop();
    list.lastElementChild?.remove();
  }
  if (ev.alert && !backfill) {
    state.pinned.unshift(ev);
    renderPinned();
    row.classList.add("fresh");
    alarm();
  }
  renderCounts();
  saveSoon();
}

function onLogbook(ev) {
  const book = config.logbooks[String(ev.logbook_id)] || { label: `#${ev.logbook_id}` };
  book.state = ev.state;
  book.reason = ev.reason;
  config.logbooks[String(ev.logbook_id)] = book;
  const banners = $("banners");
  banners.querySelector(`[data-logbook-id="${ev.logbook_id}"]`)?.remove();
  if (ev.state === "active") return;
  banners.prepend(el("div", {
    class: `banner banner-${ev.state}`, dataset: { logbookId: ev.logbook_id }, role: "alert",
  },
  el("strong", {}, t(`banner_${ev.state}`).replace("{label}", book.label)),
  ev.reason ? el("span", {}, `${t("reason")}${t("colon")}${ev.reason}`) : null,
  el("button", { type: "button", class: "linkish", onclick: (e) => e.target.parentElement.remove() },
    t("dismiss"))));
}

function onMessage(msg) {
  switch (msg.type) {
    case "checkin":
      onCheckin(msg);
      break;
    case "logbook":
      onLogbook(msg);
      break;
    case "ready":
      backfill = false;
      attempt = 0;
      api.connected = true;
      api.readyCount += 1;
      setConn("connected");
      save();
      break;
    default: // ping, and whatever a newer server adds
      break;
  }
}

// ---- the connection ---------------------------------------------------------------------

let ws = null;
let attempt = 0;
let retryTimer = null;
let silenceTimer = null;
let stopped = false;

function heard() {
  clearTimeout(silenceTimer);
  silenceTimer = setTimeout(() => ws?.close(), SILENCE_MS);
}

function connect() {
  clearTimeout(retryTimer);
  retryTimer = null;
  if (stopped || ws) return;
  setConn(attempt ? "reconnecting" : "connecting");
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const sock = new WebSocket(
    `${scheme}//${location.host}/ws/venues/${config.venue_id}/feed?after=${state.lastId}`);
  ws = sock;
  heard();
  sock.onmessage = (event) => {
    if (sock !== ws) return;
    heard();
    let msg;
    try {
      msg = JSON.parse(event.data);
    } catch {
      return;
    }
    onMessage(msg);
    // occupancy.js (在场/容量, 已满, advice) takes the feed's other events from here
    window.dispatchEvent(new CustomEvent("scanbook:feed", { detail: msg }));
  };
  sock.onclose = (event) => {
    if (sock !== ws) return;
    ws = null;
    api.connected = false;
    clearTimeout(silenceTimer);
    const stop = STOP_CODES[event.code];
    if (stop) {
      stopped = true;
      setConn("disconnected");
      const closed = $("closed");
      closed.replaceChildren(t(stop));
      if (event.code === 4401) {
        closed.append(" ", el("a", { href: `/login?next=${encodeURIComponent(location.pathname)}` },
          t("sign_in")));
      }
      closed.hidden = false;
      return;
    }
    scheduleReconnect();
  };
}

function scheduleReconnect() {
  if (stopped || retryTimer) return;
  setConn("reconnecting");
  const base = BACKOFF_MS[Math.min(attempt, BACKOFF_MS.length - 1)];
  attempt += 1;
  // Jitter, so a venue's phones do not all come back in the same instant after an outage.
  retryTimer = setTimeout(connect, base * (0.8 + Math.random() * 0.4));
}

function reconnectNow() {
  if (!ws && !stopped) {
    attempt = Math.min(attempt, 1);
    connect();
  }
}
window.addEventListener("online", reconnectNow);
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible") reconnectNow();
});

// ---- start ------------------------------------------------------------------------------

if (restore()) backfill = false; // resuming: whatever replays now is new to this registrar
api.lastId = state.lastId;
renderAll();
let savedFilter = "all";
try {
  savedFilter = sessionStorage.getItem(FILTER_KEY) === "abnormal" ? "abnormal" : "all";
} catch { /* storage disabled */ }
setFilter(savedFilter);
showSoundState();
unlockAudio(); // allowed without a tap where the browser's autoplay policy permits it
connect();
