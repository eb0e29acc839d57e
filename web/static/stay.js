// Stays on the citizen's pages: the 离场 button (POST /api/me/checkout) and the open stay
// with how full its venue is (GET /api/me/stay). docs/stays.md.
import { clockTime, dayOf, el, getJSON, t } from "./common.js";
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
