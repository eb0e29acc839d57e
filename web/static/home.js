// Home for a signed-in citizen: their card (GET /api/me) and their venues (GET /api/venues).
import { el, getJSON, popupHint, popupLabel, statusLabel, t } from "./common.js";

async function showCard() {
  const card = document.getElementById("my-card");
  try {
    const me = await getJSON("/api/me");
    card.className = `status-card status-${me.status}`;
    card.dataset.status = me.status;
    card.replaceChildren(...[
      el("p", { class: "status-label" }, statusLabel(me.status)),
      me.status === "popup"
        ? el("p", { class: "status-kind" }, `${popupLabel(me.popup_kind)} · ${popupHint(me.popup_kind)}`)
        : null,
      el("dl", { class: "facts" },
        el("div", {}, el("dt", {}, t("name")), el("dd", { id: "me-name" }, me.name_masked)),
        el("div", {}, el("dt", {}, t("id_number")), el("dd", {}, me.id_masked))),
      me.minor ? el("p", { class: "tag" }, me.photo_label || t("minor")) : null,
    ].filter(Boolean));
  } catch {
    card.replaceChildren(el("p", {}, t("load_failed")));
  }
}

async function showVenues() {
  const list = document.getElementById("my-venues");
  try {
    const { items } = await getJSON("/api/venues");
    if (!items.length) {
      list.replaceChildren(el("li", { class: "muted" }, t("no_venues")));
      return;
    }
    const rows = await Promise.all(items.map(async (venue) => {
      let books = [];
      try {
        books = (await getJSON(`/api/venues/${venue.id}/logbooks`)).items;
      } catch { /* the live link still works without the poster links */ }
      return el("li", { class: "venue", dataset: { venueId: venue.id } },
        el("p", { class: "venue-name" }, venue.name),
        el("p", { class: "muted small" }, venue.address),
        el("p", { class: "venue-links" },
          el("a", { class: "button", href: `/venues/${venue.id}/live` }, t("live")),
          ...books.filter((b) => b.state !== "deleted").map((b) =>
            el("a", { class: "button secondary", href: `/logbooks/${b.id}/poster` },
              `${t("poster")} · ${b.label}`))));
    }));
    list.replaceChildren(...rows);
  } catch {
    list.replaceChildren(el("li", {}, t("load_failed")));
  }
}

// The card follows /ws/me: a status change re-renders it, an announcement shows above it.
let lastNotice = null;
let attempt = 0;
function follow() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const query = lastNotice === null ? "" : `?after=${lastNotice}`;
  const ws = new WebSocket(`${scheme}//${location.host}/ws/me${query}`);
  ws.onmessage = (event) => {
    let msg;
    try {
      msg = JSON.parse(event.data);
    } catch {
      return;
    }
    if (msg.type === "ready") {
      attempt = 0;
      lastNotice = Math.max(lastNotice ?? 0, msg.last_id ?? 0);
      document.body.dataset.meFeed = "ready";
    } else if (msg.type === "status" || msg.type === "notice") {
      lastNotice = Math.max(lastNotice ?? 0, msg.id);
      if (msg.type === "status") {
        showCard();
      } else {
        document.getElementById("notices")
          .prepend(el("p", { class: "notice", role: "status" }, msg.text));
      }
    }
  };
  ws.onclose = (event) => {
    document.body.dataset.meFeed = "closed";
    if (event.code >= 4400 && event.code < 4500) return; // signed out or not a citizen
    const delay = [1000, 2000, 5000, 15000][Math.min(attempt++, 3)];
    setTimeout(follow, delay);
  };
}

showCard();
showVenues();
follow();
