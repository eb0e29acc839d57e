// A signed-in citizen's home: the status card (photo, 3-second press to retake, advice), the
// 通知栏 and live status notices from /ws/me, 他人代查, 留言栏, scans waiting to be sent,
// and the venues where they are a registrar.
import { beijingNow, clockTime, dayOf, el, getJSON, popupHint, popupLabel, statusLabel, t }
  from "./common.js";
import { csrfFetch } from "./csrf.js";
import { deliverWhenOnline, pendingScans } from "./offline.js";
import { setupPhoto } from "./photo.js";

const config = JSON.parse(document.getElementById("home-config").textContent);
const lang = document.documentElement.lang.startsWith("zh") ? "zh" : "en";
const $ = (id) => document.getElementById(id);
const api = { retakeOpened: 0, pressStarted: 0, photoUploads: 0, statusNotices: 0,
  notices: 0, delivered: 0, feed: "connecting" };
window.scanbook = api;

// ---- the card -----------------------------------------------------------------------------

function showPhoto(url) {
  const img = $("photo-img");
  if (url) {
    img.src = url;
    img.hidden = false;
    $("photo-none").hidden = true;
  } else {
    img.hidden = true;
    $("photo-none").hidden = false;
  }
}

function fillCard(me) {
  const card = $("my-card");
  card.className = `status-card status-${me.status}`;
  card.dataset.status = me.status;
  $("card-status").textContent = statusLabel(me.status);
  const kind = $("card-kind");
  kind.hidden = me.status !== "popup" || !me.popup_kind;
  kind.textContent = me.popup_kind ? `${popupLabel(me.popup_kind)} · ${popupHint(me.popup_kind)}` : "";
  $("me-name").textContent = me.name_masked;
  $("me-id").textContent = me.id_masked;
  $("card-advice").textContent = me.advice?.[lang] || "";
  const reason = $("card-reason");
  reason.hidden = !me.reason || me.status === "green";
  reason.querySelector("span").textContent = me.reason || "";
  const action = me.action && me.action.kind === "itinerary" ? me.action : null;
  $("card-action-wrap").hidden = !action;
  if (action) {
    $("card-action").href = action.url;
    $("card-action").textContent = action.label[lang];
  }
  $("photo-label").hidden = !me.minor;
  $("photo-label").textContent = me.photo_label || "";
  showPhoto(me.photo_url);
}

async function refreshCard() {
  try {
    fillCard(await getJSON("/api/me"));
  } catch { /* keep what is shown; the next notice retries */ }
}

const tick = () => { $("clock").textContent = beijingNow(); };
tick();
setInterval(tick, 1000); // a live clock: a screenshot of the card is not the card

setupPhoto({ onUploaded: showPhoto, counters: api });

// ---- 通知栏 and live status notices (/ws/me) ----------------------------------------------

function addNotice(msg) {
  const list = $("notices");
  if (list.querySelector(`[data-id="${msg.id}"]`)) return;
  list.prepend(el("li", { class: "bar-item fresh", dataset: { id: msg.id } },
    el("span", { class: "bar-text" }, msg.text), " ",
    el("time", { class: "bar-time", datetime: msg.at },
      `${dayOf(msg.at).slice(5)} ${clockTime(msg.at).slice(0, 5)}`)));
  while (list.children.length > 5) list.lastElementChild.remove();
  $("notices-empty").hidden = true;
  api.notices += 1;
}

function statusNotice(msg) {
  const toast = $("status-toast");
  const kind = msg.status === "popup" && msg.popup_kind ? ` · ${popupLabel(msg.popup_kind)}` : "";
  toast.className = `toast status-${msg.status}`;
  toast.replaceChildren(
    el("strong", {}, t("status_changed")), " ", `${statusLabel(msg.status)}${kind}`,
    msg.reason ? el("span", { class: "toast-reason" }, `${t("reason")}${t("colon")}${msg.reason}`)
      : null,
    el("button", { type: "button", class: "linkish", onclick: () => { toast.hidden = true; } },
      t("dismiss")));
  toast.hidden = false;
  api.statusNotices += 1;
  navigator.vibrate?.(300);
  refreshCard();
}

let lastNotice = config.notice_head ?? 0;
let attempt = 0;
function follow() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(`${scheme}//${location.host}/ws/me?after=${lastNotice}`);
  ws.onmessage = (event) => {
    let msg;
    try {
      msg = JSON.parse(event.data);
    } catch {
      return;
    }
    if (msg.type === "ready") {
      attempt = 0;
      api.feed = "ready";
      document.body.dataset.meFeed = "ready";
    } else if (msg.type === "status" || msg.type === "notice") {
      lastNotice = Math.max(lastNotice, msg.id);
      if (msg.type === "status") statusNotice(msg);
      else addNotice(msg);
    }
  };
  ws.onclose = (event) => {
    api.feed = "closed";
    document.body.dataset.meFeed = "closed";
    if (event.code >= 4400 && event.code < 4500) return; // signed out or not a citizen
    const delay = [1000, 2000, 5000, 15000][Math.min(attempt++, 3)];
    setTimeout(follow, delay);
  };
}

// ---- forms: 他人代查 and 留言栏 ------------------------------------------------------------

async function postJSON(url, body) {
  const response = await csrfFetch(url, {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "application/json" },
    body: JSON.stringify(body),
  });
  return { response, body: await response.json().catch(() => ({})) };
}

$("proxy-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const out = $("proxy-result");
  const name = $("proxy-name").value.trim();
  const idNumber = $("proxy-id").value.trim().toUpperCase();
  if (!name || !/^\d{17}[\dX]$/.test(idNumber)) {
    out.replaceChildren(el("p", { class: "notice notice-error", role: "alert" }, t("proxy_invalid")));
    return;
  }
  let answer;
  try {
    answer = await postJSON("/api/proxy-check", { name, id_number: idNumber });
  } catch {
    out.replaceChildren(el("p", { class: "notice notice-error", role: "alert" }, t("network_error")));
    return;
  }
  const { response, body } = answer;
  if (response.ok) {
    out.replaceChildren(el("div", { class: `mini-card status-${body.status}`, id: "proxy-card",
      dataset: { status: body.status } },
    el("span", { class: "mini-name" }, body.name_masked),
    el("strong", { class: "mini-status" }, statusLabel(body.status)),
    body.popup_kind ? el("span", {}, popupLabel(body.popup_kind)) : null));
  } else {
    const text = { 404: t("proxy_not_found"), 429: t("proxy_too_many"),
      422: t("proxy_invalid") }[response.status] || body.message || t("network_error");
    out.replaceChildren(el("p", { class: "notice notice-error", role: "alert" }, text));
  }
});

$("message-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const text = $("message-text").value.trim();
  const status = $("message-status");
  status.hidden = false;
  if (!text) {
    status.className = "notice notice-error";
    status.textContent = t("message_empty");
    return;
  }
  try {
    const { response, body } = await postJSON("/api/messages", { text });
    status.className = response.ok ? "notice notice-ok" : "notice notice-error";
    status.textContent = response.ok ? t("message_sent") : (body.message || t("network_error"));
    if (response.ok) $("message-text").value = "";
  } catch {
    status.className = "notice notice-error";
    status.textContent = t("network_error");
  }
});

// ---- scans made offline -------------------------------------------------------------------

function showPending() {
  const items = pendingScans();
  $("pending").hidden = items.length === 0;
  $("pending-items").replaceChildren(...items.map((item) =>
    el("li", { class: "pending-item" }, el("strong", {}, t("pending")), " ",
      `${item.venue} · ${item.label} · ${new Date(item.scanned_at).toLocaleTimeString("zh-CN",
        { timeZone: "Asia/Shanghai", hour12: false })}`)));
}

// ---- my venues ----------------------------------------------------------------------------

async function showVenues() {
  const list = $("my-venues");
  try {
    const { items } = await getJSON("/api/venues");
    if (!items.length) {
      list.replaceChildren(el("li", { class: "muted" }, t("no_venues")));
      return;
    }
    list.replaceChildren(...items.map((venue) =>
      el("li", { class: "venue", dataset: { venueId: venue.id } },
        el("p", { class: "venue-name" }, venue.name),
        el("p", { class: "muted small" }, venue.address),
        el("p", { class: "venue-links" },
          el("a", { class: "button", href: `/venues/${venue.id}/live` }, t("live")),
          el("a", { class: "button secondary", href: `/venues/${venue.id}` }, t("manage"))))));
  } catch {
    list.replaceChildren(el("li", {}, t("load_failed")));
  }
}

showPending();
deliverWhenOnline((item, result) => {
  if (result.ok) api.delivered += 1;
  showPending();
  if (result.ok) refreshCard();
});
showVenues();
follow();
