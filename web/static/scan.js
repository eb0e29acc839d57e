// The page behind a logbook's QR code: opening it is the check-in (no extra tap), then the
// card staff check at the door shows big: photo (with the minor label), status, date and a
// live clock, and for an abnormal status what to do; a popup opens a dialog whose 继续 leads
// to its flow. Offline at the door (no network, or the request cannot get through), the scan
// is queued on the phone with its time, the card says 待发送, and it is sent when the network
// returns.
import { beijingNow, clockTime, dayOf, popupHint, popupLabel, statusLabel, t } from "./common.js";
import { csrfFetch } from "./csrf.js";
import { deliverWhenOnline, isNetworkError, pendingScans, queueScan } from "./offline.js";
import { showHousehold, showStay } from "./stay.js";

const area = document.getElementById("scan-area");
const button = document.getElementById("check-in");
const errorBox = document.getElementById("scan-error");
const card = document.getElementById("result");
const code = area.dataset.code;
const venue = document.getElementById("venue-name").textContent;
const label = document.getElementById("logbook-label").textContent;
const config = JSON.parse(document.getElementById("scan-config").textContent);
const lang = document.documentElement.lang.startsWith("zh") ? "zh" : "en";
const progress = document.getElementById("scan-progress");
const dialog = document.getElementById("popup-dialog");
const api = { pending: 0, delivered: 0, lastStatus: null, lastKind: null, checkIns: 0 };
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
  progress.hidden = true;
  button.hidden = false;
  button.disabled = false;
  button.textContent = t("check_in_retry");
}

function set(id, text) {
  document.getElementById(id).textContent = text;
}

function beijingDate() {
  return new Date().toLocaleDateString("sv-SE", { timeZone: "Asia/Shanghai" }); // YYYY-MM-DD
}

function showClock() {
  const tick = () => {
    set("clock", beijingNow());
    set("result-date", beijingDate());
  };
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
  showGuide(body.status, body.popup_kind);
  area.hidden = true;
  document.getElementById("place").hidden = true; // the card names venue and logbook itself
  card.hidden = false;
  showClock();
  window.scrollTo(0, 0); // the card starts under the top bar, photo first
  if (body.status === "popup") openPopup(body.popup_kind);
  showStay(document.getElementById("stay-box"), body.checkin_id); // 离场; a full venue
  showHousehold(document.getElementById("household-box"), code); // check in my dependants
}

function guideFor(status, kind) {
  return config.guide.find((g) => g.status === status && (status !== "popup" || g.popup_kind === kind))
    || config.guide.find((g) => g.status === status);
}

// 请勿入场, the advice and whom to call, for an abnormal status; nothing extra for green.
function showGuide(status, kind) {
  const guide = guideFor(status, kind);
  const door = guide?.door;
  const entry = document.getElementById("result-entry");
  entry.hidden = !door;
  entry.textContent = door ? door.entry[lang] : "";
  document.getElementById("result-advice-box").hidden = !door;
  set("result-advice", guide ? guide.advice[lang] : "");
  set("result-contact", door ? door.contact[lang] : "");
  document.getElementById("result-report").hidden = !(status === "popup" && kind === "risk_area");
  const next = continueTarget(guide);
  document.getElementById("result-action-wrap").hidden = !(status === "popup" && kind === "travel");
  document.getElementById("result-action").href = next;
}

// Where 继续 leads: the itinerary check for a travel popup (the status guide's action), the
// community report for a risk-area one.
function continueTarget(guide) {
  const action = guide?.action;
  if (action?.kind === "itinerary") return action.url || "/#my-card";
  return "tel:12345";
}

// 继续 on a travel popup also starts the itinerary verification (the platform's callback
// finishes it; the home page shows that it is pending). Not awaited: the link goes on, and
// keepalive lets the request outlive this page.
let verifying = null;
function startVerification() {
  if (api.lastKind !== "travel" || verifying) return;
  verifying = csrfFetch("/api/me/itinerary-verification", {
    method: "POST", keepalive: true, headers: { Accept: "application/json" } })
    .then((response) => { api.verification = response.status; })
    .catch(() => { verifying = null; });
}
for (const id of ["popup-continue", "result-action"]) {
  document.getElementById(id).addEventListener("click", startVerification);
}

function openPopup(kind) {
  const guide = guideFor("popup", kind);
  set("popup-title", `${statusLabel("popup")} · ${popupLabel(kind)}`);
  set("popup-entry", guide?.door ? guide.door.entry[lang] : "");
  set("popup-advice", guide ? guide.advice[lang] : popupHint(kind));
  set("popup-contact", guide?.door ? guide.door.contact[lang] : "");
  const go = document.getElementById("popup-continue");
  go.href = continueTarget(guide);
  go.textContent = kind === "risk_area" ? t("report_call") : t("continue");
  if (!dialog.open) dialog.showModal();
  api.popupShown = kind;
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
  showGuide("pending", null);
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
  progress.hidden = false;
  errorBox.hidden = true;
  api.checkIns += 1;
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
    api.lastKind = body.popup_kind;
    const note = body.status === "green" ? t("checked_in") : t("checked_in_abnormal");
    showCard(body, response.status === 200 ? t("already_checked_in") : note);
    return;
  }
  if (response.status === 503) { // the server is up but cannot record it now: keep it
    queue();
    return;
  }
  const message = body.error === "code_expired" ? t("code_expired") : body.message;
  showError(message || t("scan_failed"), response.status === 401);
  ready();
  if (response.status === 410 || response.status === 404) {
    button.hidden = true; // the code stopped working: nothing to retry
  }
}

// Queued scans (this page's or another's) go out when the network is back.
deliverWhenOnline((item, result) => {
  api.pending = pendingScans().length;
  if (item.code !== code) return;
  if (result.ok) {
    api.delivered += 1;
    api.lastStatus = result.body.status;
    api.lastKind = result.body.popup_kind;
    showCard(result.body, t("delivered_note"));
  } else if (!result.kept) {
    card.hidden = true;
    area.hidden = false;
    progress.hidden = true;
    button.hidden = true;
    const body = result.body || {};
    showError(body.error === "code_expired" ? t("code_expired") : (body.message || t("scan_failed")));
  }
});

button.addEventListener("click", checkIn);

// Opening the page is the scan: check in at once (a scan already queued offline for this
// code is shown instead). A page the browser only prerenders checks in when it is shown.
const mine = pendingScans().find((item) => item.code === code);
if (mine) {
  progress.hidden = true;
  showPending(mine);
} else if (document.prerendering) {
  document.addEventListener("prerenderingchange", checkIn, { once: true });
} else {
  checkIn();
}
