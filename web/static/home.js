// A signed-in citizen's home: the status card (photo, 3-second press to retake, advice), the
// 通知栏 and live status notices from /ws/me, 他人代查, 留言栏, scans waiting to be sent,
// and the venues where they are a registrar.
import { beijingNow, clockTime, dayOf, el, getJSON, popupHint, popupLabel, statusLabel, t }
  from "./common.js";
import { csrfFetch } from "./csrf.js";
import { idNumberProblem, say } from "./idnumber.js";
import { deliverWhenOnline, pendingScans } from "./offline.js";
import { setupPhoto } from "./photo.js";

const config = JSON.parse(document.getElementById("home-config").textContent);
const lang = document.documentElement.lang.startsWith("zh") ? "zh" : "en";
const $ = (id) => document.getElementById(id);
const api = { retakeOpened: 0, pressStarted: 0, photoUploads: 0, statusNotices: 0,
  notices: 0, delivered: 0, feed: "connecting", itinerary: config.itinerary?.state ?? null,
  invitationsAnswered: 0 };
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
  showItinerary(me);
  $("photo-label").hidden = !me.minor;
  $("photo-label").textContent = me.photo_label || "";
  showPhoto(me.photo_url);
}

// ---- the travel popup's itinerary verification ------------------------------------------
// 继续 opens the platform (a new tab) and starts a verification here; only the platform's
// callback to the server can finish it. The card turns green on the /ws/me status notice; a
// failed check changes no status, so while one is pending the card is re-read now and then.

const ITINERARY_POLL_MS = 5000;
let itineraryPoll = null;

function showItinerary(me) {
  const travel = me.status === "popup" && me.popup_kind === "travel";
  const state = travel && me.itinerary ? me.itinerary.state : null;
  api.itinerary = me.itinerary ? me.itinerary.state : null;
  const line = $("itinerary-state");
  line.hidden = state !== "pending" && state !== "failed";
  line.dataset.state = state || "";
  line.textContent = state === "failed" ? t("itinerary_failed") : t("itinerary_pending");
  if (state === "pending" && !itineraryPoll) {
    itineraryPoll = setInterval(refreshCard, ITINERARY_POLL_MS);
  } else if (state !== "pending" && itineraryPoll) {
    clearInterval(itineraryPoll);
    itineraryPoll = null;
  }
}

$("card-action").addEventListener("click", async () => {
  const line = $("itinerary-state");
  try {
    const response = await csrfFetch("/api/me/itinerary-verification", {
      method: "POST", headers: { Accept: "application/json" } });
    if (!response.ok) throw new Error(String(response.status));
    const check = await response.json();
    showItinerary({ status: "popup", popup_kind: "travel", itinerary: check });
  } catch {
    line.hidden = false;
    line.dataset.state = "error";
    line.textContent = t("itinerary_start_failed");
  }
});

async function refreshCard() {
  try {
    fillCard(await getJSON("/api/me"));
  } catch { /* keep what is shown; the next notice retries */ }
}

const tick = () => {
  $("clock").textContent = beijingNow();
  const proxyClock = $("proxy-clock"); // 他人代查's card has a live clock too
  if (proxyClock) {
    proxyClock.textContent = beijingNow();
    $("proxy-date").textContent = beijingDate();
  }
};
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

// The server's message in this page's language ("中文 / English").
function localMessage(message) {
  if (typeof message !== "string" || !message.includes(" / ")) return message;
  const [zh, ...en] = message.split(" / ");
  return lang === "zh" ? zh : en.join(" / ");
}

function guideFor(status, kind) {
  const guide = config.guide || [];
  return guide.find((g) => g.status === status && (status !== "popup" || g.popup_kind === kind))
    || guide.find((g) => g.status === status);
}

// 他人代查's answer: a card like one's own (masked name, status, date and a live clock, and
// for an abnormal status 请勿入场, the advice and whom to call), so it can be shown at a door.
function proxyCard(body) {
  const guide = guideFor(body.status, body.popup_kind);
  const door = guide?.door;
  const checked = body.at ? `${dayOf(body.at)} ${clockTime(body.at)}` : "";
  return el("div", { class: `status-card proxy-card status-${body.status}`, id: "proxy-card",
    dataset: { status: body.status } },
  el("p", { class: "proxy-kicker" }, t("proxy_card_title")),
  el("p", { class: "status-label", id: "proxy-status" }, statusLabel(body.status)),
  body.popup_kind ? el("p", { class: "status-kind" }, popupLabel(body.popup_kind)) : null,
  door ? el("p", { class: "entry-stop", id: "proxy-entry" }, door.entry[lang]) : null,
  el("p", { class: "result-date" }, el("span", { id: "proxy-date" }, beijingDate()), " ",
    el("span", { class: "clock", id: "proxy-clock" }, beijingNow())),
  door ? el("div", { class: "door-advice" },
    el("p", { class: "advice", id: "proxy-advice" }, guide.advice[lang]),
    el("p", { class: "advice contact", id: "proxy-contact" }, door.contact[lang])) : null,
  el("dl", { class: "facts" },
    el("div", {}, el("dt", {}, t("name")), el("dd", { id: "proxy-name-masked" }, body.name_masked)),
    el("div", {}, el("dt", {}, t("checked_at")), el("dd", { id: "proxy-at" }, checked))));
}

function beijingDate() {
  return new Date().toLocaleDateString("sv-SE", { timeZone: "Asia/Shanghai" });
}

function proxyError(text) {
  $("proxy-result").replaceChildren(el("p", { class: "notice notice-error", role: "alert",
    id: "proxy-error" }, text));
}

$("proxy-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const out = $("proxy-result");
  const name = $("proxy-name").value.trim();
  const idNumber = $("proxy-id").value.trim().toUpperCase();
  if (!name) {
    proxyError(t("name_missing"));
    $("proxy-name").focus();
    return;
  }
  const problem = idNumberProblem(idNumber);
  if (problem) {
    proxyError(say(t, problem));
    $("proxy-id").focus();
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
    out.replaceChildren(proxyCard(body));
  } else {
    const text = { 404: t("proxy_not_found"), 429: t("proxy_too_many") }[response.status]
      || localMessage(body.message) || t("network_error");
    proxyError(text);
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
    if (response.ok) {
      $("message-text").value = "";
      showMessages();
    }
  } catch {
    status.className = "notice notice-error";
    status.textContent = t("network_error");
  }
});

// 留言栏 as a conversation: my messages, the officials' replies, handled or waiting, and a
// follow-up in the same thread.
function when(iso) {
  return `${dayOf(iso)} ${clockTime(iso).slice(0, 5)}`;
}

function thread(m) {
  const state = m.handled ? "handled" : "waiting";
  const input = el("textarea", { id: `follow-${m.id}`, rows: 2, maxlength: 2000,
    class: "follow-text" });
  const note = el("p", { class: "small", role: "status", hidden: true });
  const form = el("form", { class: "follow-form stack", novalidate: true,
    onsubmit: async (event) => {
      event.preventDefault();
      const text = input.value.trim();
      if (!text) {
        note.hidden = false;
        note.textContent = t("message_empty");
        return;
      }
      try {
        const { response, body } = await postJSON(`/api/messages/${m.id}/replies`, { text });
        if (response.ok) {
          showMessages();
          return;
        }
        note.textContent = localMessage(body.message) || t("network_error");
      } catch {
        note.textContent = t("network_error");
      }
      note.hidden = false;
    } },
  el("label", { for: `follow-${m.id}` }, t("message_follow_up")), input,
  el("button", { type: "submit", class: "button secondary" }, t("message_send")), note);
  return el("li", { class: `thread ${state}`, dataset: { messageId: m.id, handled: m.handled } },
    el("p", { class: "thread-head" },
      el("span", { class: `pill pill-${state}` }, t(`message_${state}`)), " ",
      el("time", { class: "muted small", datetime: m.at }, when(m.at))),
    el("p", { class: "bubble mine" }, m.text),
    ...m.replies.map((r) => el("div", { class: `bubble ${r.from === "official" ? "theirs" : "mine"}` },
      el("p", { class: "bubble-who small" }, r.from === "official" ? t("message_from_official")
        : t("message_from_me"), " · ", when(r.at)),
      el("p", { class: "bubble-text" }, r.text))),
    el("details", { class: "follow" }, el("summary", {}, t("message_follow_up")), form));
}

async function showMessages() {
  try {
    const { items } = await getJSON("/api/me/messages");
    $("my-messages").replaceChildren(...items.map(thread));
    $("my-messages-empty").hidden = items.length > 0;
    api.messages = items.length;
  } catch { /* the list stays as it was */ }
}

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

// ---- invitations to be a co-registrar ------------------------------------------------------
// Accepting needs a green status: the server says so (to me only) and the invitation waits.

function tell(box, text, kind = "error") {
  box.className = `notice notice-${kind}`;
  box.textContent = text;
  box.hidden = !text;
}

$("invitations")?.addEventListener("click", async (event) => {
  const button = event.target.closest(".invitation-answer");
  if (!button) return;
  const item = button.closest("li");
  const answer = button.dataset.answer;
  const box = $("invitation-status");
  let response;
  try {
    response = await csrfFetch(`/api/invitations/${item.dataset.invitationId}/${answer}`,
      { method: "POST", headers: { Accept: "application/json" } });
  } catch {
    tell(box, t("network_error"));
    return;
  }
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    if (body.error === "invitation_expired") item.remove(); // it cannot be answered any more
    tell(box, body.error === "registrar_not_green" ? t("invitation_not_green")
      : body.error === "invitation_expired" ? t("invitation_expired_answer")
      : `${t("request_failed")}${body.message || response.status}`);
    return;
  }
  api.invitationsAnswered += 1;
  item.remove();
  tell(box, t(answer === "accept" ? "invitation_accepted" : "invitation_declined"), "ok");
  if (answer === "accept") showVenues();
});

showItinerary({ ...config.card, itinerary: config.itinerary });
showPending();
deliverWhenOnline((item, result) => {
  if (result.ok) api.delivered += 1;
  showPending();
  if (result.ok) refreshCard();
});
showVenues();
showMessages();
follow();
