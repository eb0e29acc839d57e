// My visits (GET /api/me/checkins, every page of the retention period), newest first: venue,
// arrival, departure, and 离场 for a stay still open.
import { clockTime, dayOf, el, getJSON, t } from "./common.js";
import { leaveButton, leftNote } from "./stay.js";

const list = document.getElementById("visits");
const empty = document.getElementById("visits-empty");
const errorBox = document.getElementById("visits-error");
window.scanbook = { loaded: false };

function when(iso) {
  return `${dayOf(iso)} ${clockTime(iso)}`;
}

function row(visit) {
  const departure = el("span", { class: "visit-left" },
    visit.left_at ? `${t("departed")} ${when(visit.left_at)}` : t("inside_now"));
  const item = el("li", { class: "visit", dataset: { id: visit.checkin_id } },
    el("strong", { class: "visit-venue" }, visit.venue.name),
    el("span", { class: "muted small" }, ` · ${visit.logbook.label}`),
    el("br"),
    el("span", { class: "visit-at" }, `${t("arrived")} ${when(visit.at)}`), " ",
    departure);
  if (!visit.left_at) {
    item.append(" ", leaveButton(visit.checkin_id, (leftAt, error) => {
      if (leftAt) {
        departure.textContent = leftNote(leftAt);
        item.querySelector(".leave-button")?.remove();
      } else {
        errorBox.textContent = error;
        errorBox.hidden = false;
      }
    }));
  }
  return item;
}

async function load() {
  const visits = [];
  let after = 0;
  for (;;) {
    const page = await getJSON(`/api/me/checkins?after=${after}&limit=500`);
    visits.push(...page.items);
    if (page.items.length < 500) break;
    after = page.next_after;
  }
  visits.reverse(); // newest first
  list.replaceChildren(...visits.map(row));
  empty.hidden = visits.length > 0;
  window.scanbook.loaded = true;
}

load().catch((error) => {
  errorBox.textContent = error.message;
  errorBox.hidden = false;
});
