// The live page's 在场 N / 容量 M, the 已满 banner and the wallboard's advice for this venue,
// kept current by the feed's `occupancy` events (live.js hands them over as "scanbook:feed").
import { t } from "./common.js";

const box = document.getElementById("occupancy");
const count = document.getElementById("occupancy-count");
const banner = document.getElementById("full-banner");
const advice = document.getElementById("venue-advice");
const api = window.scanbook || (window.scanbook = {});
api.occupancy = { inside: Number(box.dataset.inside), capacity: box.dataset.capacity || null };

function show(ev) {
  api.occupancy = { inside: ev.inside, capacity: ev.capacity, full: ev.full };
  count.textContent = ev.capacity
    ? t("inside_of_capacity").replace("{n}", ev.inside).replace("{m}", ev.capacity)
    : t("inside_only").replace("{n}", ev.inside);
  box.dataset.inside = ev.inside;
  box.classList.toggle("full", Boolean(ev.full));
  banner.hidden = !ev.full;
  advice.hidden = !ev.advice;
  advice.textContent = ev.advice
    ? t(`advice_${ev.advice.kind}`).replace("{add}", ev.advice.add) : "";
}

window.addEventListener("scanbook:feed", (event) => {
  const ev = event.detail;
  if (ev.type === "occupancy") show(ev);
  if (ev.type === "checkout") {
    // an arrival on the list that has left: shown as such
    document.querySelectorAll(`[data-id="${ev.id}"]`).forEach((row) => {
      row.classList.add("left");
      row.dataset.leftAt = ev.left_at;
    });
  }
});
