// Scans made while the phone is offline: kept in localStorage with the time they were made,
// sent when the network returns (the `online` event, or the next page that loads). The
// server records the check-in at that time (scanned_at, at most 2 hours back).
import { csrfFetch } from "./csrf.js";

const KEY = "scanbook.pending.v1";
const RETRY_MS = 5000;
let flushing = null;

export function pendingScans() {
  try {
    const items = JSON.parse(localStorage.getItem(KEY) || "[]");
    return Array.isArray(items) ? items : [];
  } catch {
    return [];
  }
}

function store(items) {
  try {
    localStorage.setItem(KEY, JSON.stringify(items));
  } catch { /* storage full or disabled: the scan stays on this page only */ }
}

// Queue a scan; returns the stored item {id, code, scanned_at, venue, label}.
export function queueScan({ code, venue, label }) {
  const item = {
    id: `${Date.now()}-${Math.random().toString(36).slice(2, 8)}`,
    code,
    scanned_at: new Date().toISOString(),
    venue,
    label,
  };
  store([...pendingScans().filter((p) => p.code !== code), item]);
  return item;
}

function drop(id) {
  store(pendingScans().filter((p) => p.id !== id));
}

// A failed fetch (TypeError) means no network; anything the server answered is an answer.
export function isNetworkError(error) {
  return error instanceof TypeError || error?.name === "AbortError";
}

async function sendOne(item) {
  const response = await csrfFetch("/api/scan", {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "application/json" },
    body: JSON.stringify({ code: item.code, scanned_at: item.scanned_at }),
  });
  const body = await response.json().catch(() => ({}));
  return { response, body };
}

// Send every queued scan. onResult(item, {ok, status, body}) is called for each one the
// server answered; scans it could not take yet (offline, signed out, busy) stay queued.
export function flushScans(onResult) {
  if (flushing) return flushing;
  flushing = (async () => {
    let retry = false;
    for (const item of pendingScans()) {
      let answer;
      try {
        answer = await sendOne(item);
      } catch (error) {
        if (isNetworkError(error)) break; // still offline: keep them all
        throw error;
      }
      const { response, body } = answer;
      if ([401, 429, 503].includes(response.status)) {
        retry = response.status !== 401;
        onResult?.(item, { ok: false, status: response.status, body, kept: true });
        break;
      }
      drop(item.id); // delivered, or refused for good (expired, deleted, too old)
      onResult?.(item, { ok: response.ok, status: response.status, body });
    }
    return retry;
  })().then((retry) => {
    flushing = null;
    if (retry) setTimeout(() => flushScans(onResult), RETRY_MS);
  }, () => {
    flushing = null;
  });
  return flushing;
}

// Flush now, and whenever the network comes back.
export function deliverWhenOnline(onResult) {
  window.addEventListener("online", () => flushScans(onResult));
  if (navigator.onLine && pendingScans().length) flushScans(onResult);
}
