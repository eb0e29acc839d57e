// My personal code (反扫): a QR code from GET /api/me/code, a new one every refresh_seconds
// (each is valid for a minute), and the check-in once a registrar has scanned it (seen as
// a new open stay made "registrar_scan" on GET /api/me/stay, asked every POLL_MS).
import { beijingNow, clockTime, dayOf, getJSON, statusLabel, t } from "./common.js";

const POLL_MS = 2000;
const img = document.getElementById("code-qr");
const next = document.getElementById("code-next");
const done = document.getElementById("code-done");
const errorBox = document.getElementById("code-error");
const api = { code: null, checkedIn: null };
window.scanbook = api;
let refreshAt = 0;
let known = null; // the open stay when the page opened: not the registrar's scan

async function refresh() {
  try {
    const body = await getJSON("/api/me/code");
    img.src = body.qr;
    img.hidden = false;
    api.code = body.code;
    refreshAt = Date.now() + body.refresh_seconds * 1000;
    errorBox.hidden = true;
  } catch (error) {
    errorBox.textContent = error.message;
    errorBox.hidden = false;
    refreshAt = Date.now() + 5000;
  }
}

async function currentStay() {
  try {
    return await getJSON("/api/me/stay");
  } catch {
    return null; // none open (404), or the network is away
  }
}

function showDone(stay) {
  api.checkedIn = stay.checkin_id;
  done.className = `status-card status-${stay.status}`;
  done.dataset.status = stay.status;
  document.getElementById("done-status").textContent = statusLabel(stay.status);
  document.getElementById("done-venue").textContent = stay.venue.name;
  document.getElementById("done-logbook").textContent = stay.logbook.label;
  document.getElementById("done-time").textContent = `${dayOf(stay.at)} ${clockTime(stay.at)}`;
  document.getElementById("done-full").hidden = !stay.venue.full;
  done.hidden = false;
}

async function watch() {
  const stay = await currentStay();
  if (stay && stay.via === "registrar_scan" && stay.checkin_id !== known
      && stay.checkin_id !== api.checkedIn) {
    showDone(stay);
  }
}

function tick() {
  document.getElementById("clock").textContent = beijingNow();
  const left = Math.max(0, Math.ceil((refreshAt - Date.now()) / 1000));
  next.textContent = t("my_code_next").replace("{n}", left);
  if (refreshAt && Date.now() >= refreshAt) {
    refreshAt = 0;
    refresh();
  }
}

(async () => {
  known = (await currentStay())?.checkin_id ?? null;
  await refresh();
  tick();
  setInterval(tick, 1000);
  setInterval(watch, POLL_MS);
})();
