// The entrance screen: a QR code that changes every 30 seconds (GET
// /api/logbooks/{id}/rotating-code when the server says the current one ends), so a photo of
// it stops working. Cut off from the server past the code's grace, it hides the dead code.
import { getJSON, t } from "./common.js";

const config = JSON.parse(document.getElementById("display-config").textContent);
const img = document.getElementById("display-qr-img");
const bar = document.getElementById("countdown-bar");
const next = document.getElementById("display-next");
const offline = document.getElementById("display-offline");
const RETRY_MS = 3000;
const LATE_MS = 150; // ask just after the window turns, not just before

let current = config.current;
let deadline = performance.now() + current.expires_in * 1000; // local clock: no skew
let timer = null;
const api = { code: current.code, window: current.window, refreshes: 0, failures: 0,
  stale: false };
window.scanbook = api;

function show(code) {
  current = code;
  deadline = performance.now() + code.expires_in * 1000;
  img.src = `data:image/svg+xml;charset=utf-8,${encodeURIComponent(code.qr_svg)}`;
  img.dataset.code = code.code;
  api.code = code.code;
  api.window = code.window;
  setStale(false);
}

function setStale(stale) {
  api.stale = stale;
  offline.hidden = !stale;
  img.classList.toggle("stale", stale);
}

function schedule(ms) {
  clearTimeout(timer);
  timer = setTimeout(refresh, Math.max(200, ms));
}

async function refresh() {
  try {
    const code = await getJSON(`/api/logbooks/${config.logbook_id}/rotating-code`);
    api.refreshes += 1;
    show(code);
    schedule(code.expires_in * 1000 + LATE_MS);
  } catch (error) {
    api.failures += 1;
    if ([401, 403, 404, 410].includes(error.status)) {
      location.reload(); // signed out, or the logbook stopped: the page says which
      return;
    }
    schedule(RETRY_MS);
  }
}

function tick() {
  const left = deadline - performance.now();
  const period = current.period * 1000;
  bar.style.width = `${Math.max(0, Math.min(1, left / period)) * 100}%`;
  next.textContent = t("display_next").replace("{n}", Math.max(0, Math.ceil(left / 1000)));
  // The server still takes the code for `grace` seconds after it was replaced; past that a
  // screen that could not fetch a new one must not show it.
  if (left < -current.grace * 1000 && !api.stale) setStale(true);
}

img.dataset.code = current.code;
schedule(current.expires_in * 1000 + LATE_MS);
setInterval(tick, 250);
tick();

document.getElementById("fullscreen").addEventListener("click", async () => {
  try {
    await document.documentElement.requestFullscreen?.();
    await navigator.wakeLock?.request("screen");
  } catch { /* not allowed here: the page still works */ }
});
window.addEventListener("online", () => schedule(0));
