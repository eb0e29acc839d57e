// The page behind a logbook's QR code: one tap checks in, then the status card shows big.
// Offline at the door (no network, or the request cannot get through), the scan is queued on
// the phone with its time, the card says 待发送, and it is sent when the network returns.
import { beijingNow, clockTime, dayOf, popupHint, popupLabel, statusLabel, t } from "./common.js";
import { csrfFetch } from "./csrf.js";
import { deliverWhenOnline, isNetworkError, pendingScans, queueScan } from "./offline.js";

const area = document.getElementById("scan-area");
const button = document.getElementById("check-in");
const errorBox = document.getElementById("scan-error");
const card = document.getElementById("result");
const code = area.dataset.code;
const venue = document.getElementById("venue-name").textContent;
const label = document.getElementById("logbook-label").textContent;
const api = { pending: 0, delivered: 0, lastStatus: null };
window.scanbook = api;
let clockTimer = null;

function showError(message, signIn) {
  errorBox.replaceChildren(message);
  if (signIn) {
    const link = document.createElement("a");
    link.href = `/login?next=${encodeURIComponent(location.pathname)}`;
    link.className = "button";
    link.textContent = t("sign_in_to_check_in");
    errorBox.append(document.createElement("br"), link);
  }
  errorBox.hidden = false;
}

function ready() {
  button.disabled = false;
  button.textContent = t("check_in");
}

function set(id, text) {
  document.getElementById(id).textContent = text;
}

function showClock() {
  const tick = () => set("clock", beijingNow());
  tick();
  clearInterval(clockTimer);
  clockTimer = setInterval(tick, 1000); // a live clock: a screenshot is not a check-in
}

function showCard(body, note) {
  card.className = `status-card status-${body.status}`;
  card.dataset.status = body.status;
  set("result-status", statusLabel(body.status));
  const kind = document.getElementById("result-kind");
  kind.hidden = body.status !== "popup";
  kind.textContent = body.popup_kind
    ? `${popupLabel(body.popup_kind)} · ${popupHint(body.popup_kind)}` : "";
  set("result-name", body.name_masked || "");
  set("result-id", body.id_masked || "");
  set("result-venue", body.venue.name);
  set("result-logbook", body.logbook.label);
  set("result-time", `${dayOf(body.at)} ${clockTime(body.at)}`);
  set("result-note", note);
  area.hidden = true;
  card.hidden = false;
  showClock();
  card.scrollIntoView({ block: "start", behavior: "smooth" });
}

function beijing(iso) {
  const parts = new Date(iso).toLocaleString("sv-SE", { timeZone: "Asia/Shanghai", hour12: false });
  return parts.slice(0, 19); // "YYYY-MM-DD HH:MM:SS"
}

// The card of a scan waiting for the network: who, where and when — but no status yet.
function showPending(item) {
  api.pending = pendingScans().length;
  card.className = "status-card status-pending";
  card.dataset.status = "pending";
  set("result-status", t("pending"));
  document.getElementById("result-kind").hidden = true;
  set("result-name", area.dataset.name || "");
  set("result-id", area.dataset.id || "");
  set("result-venue", venue);
  set("result-logbook", label);
  set("result-time", beijing(item.scanned_at));
  set("result-note", t("pending_note"));
  area.hidden = true;
  card.hidden = false;
  showClock();
}

function queue() {
  showPending(queueScan({ code, venue, label }));
}

async function checkIn() {
  if (navigator.onLine === false) {
    queue();
    return;
  }
  button.disabled = true;
  button.textContent = t("checking_in");
  errorBox.hidden = true;
  let response;
  let body = {};
  try {
    response = await csrfFetch("/api/scan", {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({ code }),
    });
    body = await response.json().catch(() => ({}));
  } catch (error) {
    if (isNetworkError(error)) {
      queue();
    } else {
      showError(t("network_error"));
      ready();
    }
    return;
  }
  if (response.ok) {
    api.lastStatus = body.status;
    showCard(body, response.status === 200 ? t("already_checked_in") : t("checked_in"));
    return;
  }
  if (response.status === 503) { // the server is up but cannot record it now: keep it
    queue();
    return;
  }
  const message = body.error === "code_expired" ? t("code_expired") : body.message;
  showError(message || t("scan_failed"), response.status === 401);
  if (response.status === 410 || response.status === 404) {
    button.hidden = true; // the code stopped working: nothing to retry
  } else {
    ready();
  }
}

// Queued scans (this page's or another's) go out when the network is back.
deliverWhenOnline((item, result) => {
  api.pending = pendingScans().length;
  if (item.code !== code) return;
  if (result.ok) {
    api.delivered += 1;
    api.lastStatus = result.body.status;
    showCard(result.body, t("delivered_note"));
  } else if (!result.kept) {
    card.hidden = true;
    area.hidden = false;
    button.hidden = true;
    const body = result.body || {};
    showError(body.error === "code_expired" ? t("code_expired") : (body.message || t("scan_failed")));
  }
});

const mine = pendingScans().find((item) => item.code === code);
if (mine) showPending(mine);
button.addEventListener("click", checkIn);
