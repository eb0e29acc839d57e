// Shared by the officials' console pages: API calls as the signed-in official (session cookie
// and CSRF header: the server knows who is calling), job polling and its progress display.
//
// Page modules load this file with their own ?v= so a deploy never mixes versions:
//   const { api } = await import(`./kit.js${new URL(import.meta.url).search}`);
import { csrfFetch } from "/static/csrf.js";
import { el, t } from "/static/common.js";

const POLL_MS = [300, 500, 800, 1200, 2000]; // job polling backs off to every 2 s

export { el, t };

// A page module calls ready() once its listeners are attached: a file chosen or a button
// pressed before then would otherwise do nothing (the module loads kit.js with a top-level
// await, after the page's load event). Tests wait for <html data-ready>.
export function ready() {
  document.documentElement.dataset.ready = "true";
}

// ---- the API --------------------------------------------------------------------------------

export class ApiError extends Error {
  constructor(message, status, code) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

// The message part in the page's language: server messages are "中文 / English".
export function localMessage(message) {
  const text = String(message || "");
  const [zh, en] = text.split(" / ");
  if (en === undefined) return text;
  return document.documentElement.lang.startsWith("zh") ? zh : en;
}

export async function api(method, url, body) {
  const headers = { Accept: "application/json", };
  const options = { method, headers };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  let response;
  try {
    response = method === "GET" ? await fetch(url, { credentials: "same-origin", ...options })
      : await csrfFetch(url, options);
  } catch {
    throw new ApiError(t("network_error"), 0, "network");
  }
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    if (response.status === 401) {
      throw new ApiError(t("adm_session_ended"), 401, "unauthenticated");
    }
    throw new ApiError(localMessage(data.message) || response.statusText, response.status,
                       data.error);
  }
  return data;
}

export function showError(node, error) {
  node.textContent = error instanceof ApiError || error instanceof Error ? error.message
    : String(error);
  node.hidden = false;
}

// ---- confirming a batch before it runs -------------------------------------------------------

// The preview's counts, shown in _confirm.html; resolves true when the official confirms.
const CONFIRM_KEYS = ["changed", "kept", "not_found", "invalid", "unregistered"];
export function askToRun(counts) {
  const box = document.getElementById("confirm");
  const list = document.getElementById("confirm-counts");
  list.replaceChildren(...CONFIRM_KEYS.filter((key) => counts[key] !== undefined
    && (counts[key] || key === "changed" || key === "kept")).map((key) =>
    el("div", { dataset: { key }, class: key === "changed" ? "" : "quiet" },
       el("dt", {}, t(`adm_confirm_${key}`)), el("dd", {}, counts[key]))));
  box.hidden = false;
  const run = document.getElementById("confirm-run");
  const cancel = document.getElementById("confirm-cancel");
  run.disabled = false;
  run.focus();
  return new Promise((resolve) => {
    const done = (answer) => () => {
      run.onclick = null;
      cancel.onclick = null;
      box.hidden = true;
      resolve(answer);
    };
    run.onclick = done(true);
    cancel.onclick = done(false);
  });
}

// ---- jobs -------------------------------------------------------------------------------------

const sleep = (ms) => new Promise((resolve) => { setTimeout(resolve, ms); });

// Poll GET /api/admin/jobs/{id} until the job finishes or fails; onUpdate(state) each time.
export async function watchJob(jobId, onUpdate) {
  for (let attempt = 0; ; attempt += 1) {
    let state;
    try {
      state = await api("GET", `/api/admin/jobs/${encodeURIComponent(jobId)}`);
    } catch (error) {
      if (error.status === 401 || error.status === 403) throw error;
      state = { state: "unknown", error: error.message }; // a blip: keep polling
    }
    onUpdate(state);
    if (state.state === "finished" || state.state === "failed") return state;
    await sleep(POLL_MS[Math.min(attempt, POLL_MS.length - 1)]);
  }
}

// changed / kept / not_found: what the job did per person (kept: an equal or stricter status).
const SUMMARY_KEYS = ["total", "changed", "kept", "not_found", "applied", "unchanged", "skipped",
  "revoked_logbooks", "ended_duties", "logbooks", "unregistered"];
const SHOWN_WHEN_ZERO = new Set(["total", "changed", "kept", "applied", "unchanged", "logbooks"]);

// Fill the _job.html section from a job state; `rows`: the job has rows of a file (errors).
export function renderJob(state, jobId, { rows = false } = {}) {
  const box = document.getElementById("job");
  box.hidden = false;
  const badge = document.getElementById("job-state");
  const kind = state.state || "queued";
  badge.textContent = t(`adm_job_${kind}`);
  badge.className = `pill ${kind === "finished" ? "pill-ok" : kind === "failed" ? "pill-bad" : ""}`;
  badge.dataset.state = kind;
  const link = document.getElementById("job-link");
  if (jobId && link && !location.pathname.startsWith("/admin/jobs/")) {
    link.href = `/admin/jobs/${encodeURIComponent(jobId)}`;
    link.hidden = false;
  }
  const bar = document.getElementById("job-bar");
  const count = document.getElementById("job-count");
  const progress = state.progress;
  if (kind === "finished") {
    bar.max = 1;
    bar.value = 1;
    count.textContent = "";
  } else if (progress && progress.total) {
    bar.max = progress.total;
    bar.value = progress.done;
    count.textContent = t("adm_progress").replace("{done}", progress.done)
      .replace("{total}", progress.total);
  } else {
    bar.removeAttribute("value"); // indeterminate while queued
  }
  const error = document.getElementById("job-error");
  if (kind === "failed") showError(error, state.error || t("adm_job_failed"));
  const summary = document.getElementById("job-summary");
  const result = state.result;
  if (kind === "finished" && result) {
    summary.replaceChildren();
    for (const key of SUMMARY_KEYS) {
      if (result[key] === undefined || (!result[key] && !SHOWN_WHEN_ZERO.has(key))) continue;
      summary.append(el("div", { dataset: { key } }, el("dt", {}, t(`adm_sum_${key}`)),
                        el("dd", {}, result[key])));
    }
    if (Array.isArray(result.errors) && (rows || result.errors.length)) {
      summary.append(el("div", { dataset: { key: "errors" },
                                 class: result.errors.length ? "bad" : "" },
                        el("dt", {}, t("adm_sum_errors")), el("dd", {}, result.errors.length)));
    }
    summary.hidden = false;
  }
}

// Row errors of a status-change result by request row (0-based): row → error.
export function errorsByRow(result) {
  const out = new Map();
  for (const error of (result && result.errors) || []) {
    if (typeof error.row === "number" && !out.has(error.row)) out.set(error.row, error);
  }
  return out;
}

export function errorText(error) {
  const known = t(`adm_err_${error.error}`);
  const detail = localMessage(error.message);
  if (known.startsWith("adm_err_")) return detail;
  return detail && detail !== known ? `${known} — ${detail}` : known;
}

export function when(iso) {
  return typeof iso === "string" ? iso.slice(0, 19).replace("T", " ") : "";
}


// Pages whose only module is this file are ready as soon as it has run.
if (document.querySelector('script[type="module"][src^="/static/official/kit.js"]')) ready();
