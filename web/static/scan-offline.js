// The offline scan page (the service worker answers /s/{code} with it when there is no
// signal): the code comes from the address, the scan is queued with its time and sent when
// the network returns (offline.js).
import { beijingNow, t } from "./common.js";
import { deliverWhenOnline, pendingScans, queueScan } from "./offline.js";

const code = decodeURIComponent(location.pathname.replace(/^\/s\//, ""));
const api = { pending: 0, delivered: 0, lastStatus: null };
window.scanbook = api;
const card = document.getElementById("result");

function set(id, text) {
  document.getElementById(id).textContent = text;
}

if (code && code !== location.pathname) {
  const mine = pendingScans().find((item) => item.code === code) || queueScan({ code, venue: "", label: "" });
  api.pending = pendingScans().length;
  set("result-time", new Date(mine.scanned_at).toLocaleString("zh-CN", { timeZone: "Asia/Shanghai", hour12: false }));
  card.hidden = false;
}
setInterval(() => set("clock", beijingNow()), 1000);

deliverWhenOnline((item, result) => {
  api.pending = pendingScans().length;
  if (item.code !== code) return;
  if (result.ok) {
    api.delivered += 1;
    api.lastStatus = result.body.status;
    card.className = `status-card status-${result.body.status}`;
    card.dataset.status = result.body.status;
    set("result-status", t(`status_${result.body.status}`));
    set("result-venue", result.body.venue.name);
    set("result-note", t("delivered_note"));
  } else if (!result.kept) {
    set("result-note", result.body?.message || t("scan_failed"));
  }
});
