// Stays on the citizen's pages: the 离场 button (POST /api/me/checkout) and the open stay
// with how full its venue is (GET /api/me/stay). docs/stays.md.
import { clockTime, dayOf, el, getJSON, statusLabel, t } from "./common.js";
import { csrfFetch } from "./csrf.js";

export function leftNote(iso) {
  return t("left_note").replace("{time}", `${dayOf(iso)} ${clockTime(iso)}`);
}

// POST /api/me/checkout for this check-in: resolves to its departure (ISO) or throws.
export async function checkOut(checkinId) {
  const response = await csrfFetch("/api/me/checkout", {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "application/json" },
    body: JSON.stringify({ checkin_id: checkinId }),
  });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.message || t("leave_failed"));
  return body.left_at;
}

// A 离场 button that checks `checkinId` out and then calls done(left_at).
export function leaveButton(checkinId, done, id) {
  const button = el("button", { type: "button", class: "button leave-button", id }, t("leave"));
  button.addEventListener("click", async () => {
    button.disabled = true;
    button.textContent = t("leaving");
    try {
      done(await checkOut(checkinId));
    } catch (error) {
      button.disabled = false;
      button.textContent = t("leave");
      done(null, error.message);
    }
  });
  return button;
}

// The scan result page: under the card, 离场 for this check-in, and a notice when the venue
// is full. `box` is the page's #stay-box.
export async function showStay(box, checkinId) {
  let stay;
  try {
    stay = await getJSON("/api/me/stay");
  } catch {
    return; // none open (or offline): nothing to show
  }
  if (stay.checkin_id !== checkinId) return;
  const note = box.querySelector("#left-note");
  document.getElementById("venue-full").hidden = !stay.venue.full;
  const button = leaveButton(checkinId, (leftAt, error) => {
    note.hidden = false;
    note.textContent = leftAt ? leftNote(leftAt) : error;
    if (leftAt) {
      button.remove();
      document.getElementById("venue-full").hidden = true;
    }
  }, "leave");
  box.querySelector("#leave-slot").replaceChildren(button);
  box.hidden = false;
}

// The scan result page: my household's members, ticked, and one button that checks them in
// with the same code (POST /api/scan {code, dependants}); each member's status and minor
// label shown from the answer's `members`.
export async function showHousehold(box, code) {
  let items;
  try {
    items = (await getJSON("/api/me/dependants")).items;
  } catch {
    return;
  }
  if (!items.length) return;
  const fieldset = box.querySelector("#household-members");
  fieldset.append(...items.map((d) => el("label", { class: "check" },
    el("input", { type: "checkbox", value: d.id, checked: true }), ` ${d.name_masked}`,
    d.minor ? el("span", { class: "minor-label" }, t("minor")) : null)));
  const button = box.querySelector("#household-checkin");
  const out = box.querySelector("#household-result");
  button.addEventListener("click", async () => {
    const ids = [...fieldset.querySelectorAll("input:checked")].map((i) => Number(i.value));
    if (!ids.length) return;
    button.disabled = true;
    const response = await csrfFetch("/api/scan", {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({ code, dependants: ids }),
    });
    const body = await response.json().catch(() => ({}));
    button.disabled = false;
    if (!response.ok) {
      out.replaceChildren(el("li", { class: "notice notice-error" }, body.message || t("scan_failed")));
      return;
    }
    out.replaceChildren(...body.members.map((m) => (m.error
      ? el("li", { class: "notice notice-error" }, m.message)
      : el("li", { class: `visit status-${m.status}`, dataset: { status: m.status } },
        el("strong", {}, m.name_masked), ` · ${statusLabel(m.status)}`,
        m.minor ? el("span", { class: "minor-label" }, t("minor")) : null))));
    window.scanbook.household = body.members;
  });
  box.hidden = false;
}
