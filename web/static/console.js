// The registrar's console: open a venue (/console); on a venue's page add logbooks, delete one
// after a confirmation, invite and remove co-registrars (or leave), and check in a visitor
// without a phone.
import { el, popupLabel, statusLabel, t } from "./common.js";
import { csrfFetch } from "./csrf.js";
import { idNumberProblem, say as sayProblem } from "./idnumber.js";

const $ = (id) => document.getElementById(id);
const api = { deleted: 0, created: 0, proxyCheckins: 0, invited: 0, removed: 0 };
window.scanbook = api;

async function send(method, url, body) {
  const options = { method, headers: { Accept: "application/json" } };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await csrfFetch(url, options);
  } catch {
    return { ok: false, status: 0, body: { message: t("network_error") } };
  }
  const answer = response.status === 204 ? {} : await response.json().catch(() => ({}));
  return { ok: response.ok, status: response.status, body: answer };
}

function say(box, text, kind = "error") {
  box.className = `notice notice-${kind}`;
  box.textContent = text;
  box.hidden = !text;
}

function failure(result) {
  if (result.status === 403 && result.body.error === "registrar_not_green") {
    return t("not_green_registrar");
  }
  return `${t("request_failed")}${result.body.message || result.status}`;
}

// ---- /console: open a venue ---------------------------------------------------------------

const venueForm = $("venue-form");
venueForm?.addEventListener("input", () => { $("venue-error").hidden = true; });
venueForm?.addEventListener("submit", async (event) => {
  event.preventDefault();
  const errorBox = $("venue-error");
  if (!venueForm.checkValidity()) {
    say(errorBox, `${t("required")}: ${[...venueForm.elements]
      .filter((e) => e.labels?.length && !e.checkValidity())
      .map((e) => e.labels[0].textContent.trim()).join("、")}`);
    return;
  }
  const data = Object.fromEntries(new FormData(venueForm));
  const body = { name: data.name.trim(), address: data.address.trim(),
    district: data.district, category: data.category };
  if (data.capacity) body.capacity = Number(data.capacity);
  $("venue-submit").disabled = true;
  const result = await send("POST", "/api/venues", body);
  $("venue-submit").disabled = false;
  if (result.ok) {
    api.created += 1;
    location.assign(`/venues/${result.body.id}`);
  } else {
    say(errorBox, failure(result));
  }
});

// ---- /venues/{id} ---------------------------------------------------------------------------

const configNode = $("venue-config");
const venue = configNode ? JSON.parse(configNode.textContent) : null;

$("logbook-form")?.addEventListener("submit", async (event) => {
  event.preventDefault();
  const input = $("logbook-label-input");
  const label = input.value.trim();
  if (!label) {
    say($("logbook-error"), t("logbook_label"));
    input.focus();
    return;
  }
  const result = await send("POST", `/api/venues/${venue.venue_id}/logbooks`, { label });
  if (result.ok) {
    api.created += 1;
    location.reload(); // the server renders the new logbook with its links
  } else {
    say($("logbook-error"), failure(result));
  }
});

// Delete: a confirmation dialog names the logbook; only "删除" deletes.
const dialog = $("confirm-delete");
let doomed = null;
document.querySelectorAll(".delete-logbook").forEach((button) => {
  button.addEventListener("click", () => {
    doomed = button.closest("li.logbook");
    $("confirm-text").textContent = t("delete_confirm").replace("{label}", doomed.dataset.label);
    dialog.showModal();
  });
});
dialog?.addEventListener("close", async () => {
  const item = doomed;
  doomed = null;
  if (dialog.returnValue !== "delete" || !item) return;
  const result = await send("DELETE", `/api/logbooks/${item.dataset.logbookId}`);
  if (result.ok || result.status === 404) {
    api.deleted += 1;
    item.remove();
    $("proxy-logbook")?.querySelector(`option[value="${item.dataset.logbookId}"]`)?.remove();
    $("no-logbooks").hidden = document.querySelectorAll("li.logbook").length > 0;
  } else {
    say($("logbook-error"), failure(result));
  }
});

// Co-registrars: the owner invites by citizen number (the answer is a pending invitation,
// whoever the number names), removes a co-registrar or withdraws an invitation; a
// co-registrar leaves. Each removal asks first.
function invitationItem(invitation) {
  const until = t("invitation_until").replace("{at}",
    invitation.expires_at.slice(5, 16).replace("T", " "));
  return el("li", { dataset: { citizenId: invitation.citizen_id, invitationId: invitation.id,
    state: invitation.state } },
    el("strong", {}, `#${invitation.citizen_id}`), " ",
    el("span", { class: "muted" }, `${t("invitation_waiting")} · ${until}`), " ",
    el("button", { type: "button", class: "button secondary small remove-registrar",
      dataset: { action: "withdraw" } }, t("invitation_withdraw")));
}

function showNoInvitations() {
  const none = $("no-invitations");
  if (none) none.hidden = $("invitations").children.length > 0;
}

$("registrar-form")?.addEventListener("submit", async (event) => {
  event.preventDefault();
  const box = $("registrar-status");
  const raw = $("registrar-id").value.trim().replace(/^#/, "");
  if (!/^\d{1,9}$/.test(raw)) {
    say(box, t("registrar_id"));
    return;
  }
  const result = await send("POST", `/api/venues/${venue.venue_id}/registrars`,
    { citizen_id: Number(raw) });
  if (result.ok) {
    api.invited += 1;
    say(box, t("registrar_added"), "ok");
    const list = $("invitations");
    // inviting again replaces an expired invitation with a new one
    for (const old of list.querySelectorAll(`li[data-citizen-id="${result.body.citizen_id}"]`)) {
      if (old.dataset.invitationId !== String(result.body.id)) old.remove();
    }
    if (!list.querySelector(`li[data-invitation-id="${result.body.id}"]`)) {
      list.append(invitationItem(result.body));
    }
    showNoInvitations();
    $("registrar-id").value = "";
  } else {
    say(box, failure(result));
  }
});

const registrarDialog = $("confirm-registrar");
let pendingRemoval = null;
document.querySelector("section[aria-labelledby='registrars-h']")?.addEventListener("click",
  (event) => {
    const button = event.target.closest(".remove-registrar");
    if (!button) return;
    const item = button.closest("li");
    pendingRemoval = { item, action: button.dataset.action };
    const name = item.querySelector("strong")?.textContent ?? "";
    const number = `#${item.dataset.citizenId}`;
    const who = name && name !== number ? `${name}（${number}）` : number;
    $("confirm-registrar-text").textContent =
      t(`registrar_confirm_${button.dataset.action}`).replace("{who}", who);
    registrarDialog.showModal();
  });
registrarDialog?.addEventListener("close", async () => {
  const removal = pendingRemoval;
  pendingRemoval = null;
  if (registrarDialog.returnValue !== "ok" || !removal) return;
  const result = await send("DELETE",
    `/api/venues/${venue.venue_id}/registrars/${removal.item.dataset.citizenId}`);
  if (!result.ok && result.status !== 404) {
    say($("registrar-error"), failure(result));
    return;
  }
  api.removed += 1;
  if (removal.action === "leave") {
    location.assign("/console"); // no longer a registrar here
    return;
  }
  removal.item.remove();
  showNoInvitations();
});

$("proxy-checkin-form")?.addEventListener("submit", async (event) => {
  event.preventDefault();
  const out = $("proxy-checkin-result");
  const logbook = $("proxy-logbook").value;
  const name = $("visitor-name").value.trim();
  const idNumber = $("visitor-id").value.trim().toUpperCase();
  const problem = !name ? { key: "name_missing" } : idNumberProblem(idNumber);
  if (!logbook || problem) {
    out.replaceChildren(el("p", { class: "notice notice-error", role: "alert" },
      problem ? sayProblem(t, problem) : t("required")));
    return;
  }
  const result = await send("POST", `/api/logbooks/${logbook}/proxy-checkins`,
    { name, id_number: idNumber });
  if (!result.ok) {
    out.replaceChildren(el("p", { class: "notice notice-error", role: "alert" }, failure(result)));
    return;
  }
  api.proxyCheckins += 1;
  const c = result.body;
  out.replaceChildren(el("div", { class: `mini-card status-${c.status}`, id: "proxy-checkin-card",
    dataset: { status: c.status } },
  el("span", {}, t("proxy_done")), el("span", { class: "mini-name" }, `${c.name} ${c.id_number}`),
  el("strong", { class: "mini-status" }, statusLabel(c.status)),
  c.popup_kind ? el("span", {}, popupLabel(c.popup_kind)) : null));
  $("visitor-name").value = "";
  $("visitor-id").value = "";
});
