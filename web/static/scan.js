// The page behind a logbook's QR code: one tap checks in, then the status card shows big.
import { beijingNow, clockTime, dayOf, popupHint, popupLabel, statusLabel, t } from "./common.js";
import { csrfFetch } from "./csrf.js";

const area = document.getElementById("scan-area");
const button = document.getElementById("check-in");
const errorBox = document.getElementById("scan-error");
const card = document.getElementById("result");
const code = area.dataset.code;
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

function showCard(body, repeat) {
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
  set("result-note", repeat ? t("already_checked_in") : t("checked_in"));
  area.hidden = true;
  card.hidden = false;
  const tick = () => set("clock", beijingNow());
  tick();
  clearInterval(clockTimer);
  clockTimer = setInterval(tick, 1000); // a live clock: a screenshot is not a check-in
  card.scrollIntoView({ block: "start", behavior: "smooth" });
}

async function checkIn() {
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
  } catch {
    showError(t("network_error"));
    ready();
    return;
  }
  if (response.ok) {
    showCard(body, response.status === 200);
    return;
  }
  showError(body.message || t("scan_failed"), response.status === 401);
  if (response.status === 410 || response.status === 404) {
    button.hidden = true; // the code stopped working: nothing to retry
  } else {
    ready();
  }
}

button.addEventListener("click", checkIn);
