// Status changes from a CSV file: read it here (UTF-8, or GB 18030 as Excel saves it in
// China), preview it, POST the rows to /api/admin/status-changes, follow the job, then show
// each row's result — the job reports invalid and unknown ID numbers per row.
const kit = await import(`./kit.js${new URL(import.meta.url).search}`);
const { api, askToRun, el, errorText, errorsByRow, renderJob, showError, t, watchJob } = kit;

const MAX_ROWS = 100000; // the API's batch limit
const SHOW_ROWS = 1000; // rows drawn in the results table (all are counted)
const PREVIEW_ROWS = 10;

// Status words people type in a spreadsheet → the API's values.
const STATUS_WORDS = {
  green: "green", 未见异常: "green", 绿码: "green", 绿: "green",
  yellow: "yellow", 居家观察: "yellow", 黄码: "yellow", 黄: "yellow",
  red: "red", 集中观察: "red", 红码: "red", 红: "red",
  popup: "popup", 弹窗: "popup",
};
const POPUP_WORDS = { travel: "travel", 行程核验: "travel", risk_area: "risk_area",
  风险地区: "risk_area" };
// Header names (English or Chinese) → field.
const HEADERS = {
  id_number: "id_number", 身份证号: "id_number", 身份证号码: "id_number", 证件号: "id_number",
  status: "status", 状态: "status", 健康状态: "status",
  reason: "reason", 原因: "reason",
  popup_kind: "popup_kind", 弹窗类型: "popup_kind",
};
const ORDER = ["id_number", "status", "reason", "popup_kind"];

const $ = (id) => document.getElementById(id);
const form = $("upload-form");
const fileInput = $("csv-file");
const submit = $("upload-submit");
let parsed = null; // { rows: [{line, change}], name }

window.scanbook = { lastResult: null };

// RFC 4180: quoted fields, doubled quotes, CRLF or LF; returns [{line, cells}].
export function parseCsv(text) {
  const records = [];
  let cells = [];
  let field = "";
  let quoted = false;
  let line = 1;
  let startLine = 1;
  for (let i = 0; i < text.length; i += 1) {
    const c = text[i];
    if (quoted) {
      if (c === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i += 1;
        } else {
          quoted = false;
        }
      } else {
        if (c === "\n") line += 1;
        field += c;
      }
    } else if (c === '"' && field === "") {
      quoted = true;
    } else if (c === ",") {
      cells.push(field);
      field = "";
    } else if (c === "\n" || c === "\r") {
      if (c === "\r" && text[i + 1] === "\n") i += 1;
      cells.push(field);
      records.push({ line: startLine, cells });
      cells = [];
      field = "";
      line += 1;
      startLine = line;
    } else {
      field += c;
    }
  }
  if (field !== "" || cells.length) {
    cells.push(field);
    records.push({ line: startLine, cells });
  }
  return records.filter((r) => r.cells.some((cell) => cell.trim() !== ""));
}

function decode(buffer) {
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(buffer);
  } catch {
    return new TextDecoder("gb18030").decode(buffer);
  }
}

function toChanges(records) {
  let columns = ORDER;
  let body = records;
  const first = records[0]?.cells.map((cell) => cell.trim().replace(/^\uFEFF/, "").toLowerCase());
  if (first && first.some((cell) => HEADERS[cell])) {
    columns = first.map((cell) => HEADERS[cell] || null);
    body = records.slice(1);
  }
  return body.map(({ line, cells }) => {
    const row = {};
    columns.forEach((name, index) => {
      if (name && cells[index] !== undefined) row[name] = cells[index].trim();
    });
    const status = (row.status || "").toLowerCase();
    const change = {
      id_number: (row.id_number || "").replace(/\s+/g, "").toUpperCase(),
      status: STATUS_WORDS[status] || status,
      reason: row.reason || "",
    };
    const popup = (row.popup_kind || "").toLowerCase();
    if (popup) change.popup_kind = POPUP_WORDS[popup] || popup;
    return { line, change };
  });
}

function statusText(value) {
  const label = t(`status_${value}`);
  return label.startsWith("status_") ? value : label;
}

function showPreview() {
  const body = $("preview-table").tBodies[0];
  body.replaceChildren(...parsed.rows.slice(0, PREVIEW_ROWS).map(({ line, change }) =>
    el("tr", {}, el("td", {}, line), el("td", { class: "mono" }, change.id_number),
       el("td", {}, statusText(change.status)), el("td", {}, change.reason))));
  $("preview-count").textContent = t("adm_rows_read").replace("{n}", parsed.rows.length)
    .replace("{file}", parsed.name);
  $("preview").hidden = false;
}

async function readFile() {
  $("parse-error").hidden = true;
  $("preview").hidden = true;
  $("row-results").hidden = true;
  $("job").hidden = true;
  submit.disabled = true;
  parsed = null;
  const file = fileInput.files[0];
  if (!file) return;
  const rows = toChanges(parseCsv(decode(await file.arrayBuffer())));
  if (!rows.length) return showError($("parse-error"), t("adm_csv_empty"));
  if (rows.length > MAX_ROWS) {
    return showError($("parse-error"), t("adm_csv_too_many").replace("{n}", MAX_ROWS));
  }
  parsed = { rows, name: file.name };
  showPreview();
  submit.disabled = false;
}

fileInput.addEventListener("change", readFile);
if (fileInput.files.length) readFile(); // chosen while this module was still loading

function showResults(result) {
  const byRow = errorsByRow(result);
  const onlyProblems = $("only-problems").checked;
  const body = $("row-table").tBodies[0];
  const shown = [];
  parsed.rows.forEach(({ line, change }, index) => {
    const error = byRow.get(index);
    if (onlyProblems && !error) return;
    if (shown.length >= SHOW_ROWS) return;
    shown.push(el("tr", { class: error ? "row-bad" : "row-ok", dataset: { line, row: index } },
      el("td", {}, line), el("td", { class: "mono" }, change.id_number || "—"),
      el("td", {}, statusText(change.status)),
      el("td", { class: "row-result" }, error ? errorText(error) : t("adm_row_ok"))));
  });
  body.replaceChildren(...shown);
  const total = onlyProblems ? byRow.size : parsed.rows.length;
  $("row-more").hidden = total <= SHOW_ROWS;
  $("row-more").textContent = t("adm_rows_more").replace("{n}", total - SHOW_ROWS);
  $("row-summary").textContent = t("adm_rows_summary").replace("{ok}", parsed.rows.length
    - byRow.size).replace("{bad}", byRow.size);
  $("row-summary").className = `row-summary ${byRow.size ? "bad" : "ok"}`;
  $("row-results").hidden = false;
}

$("only-problems").addEventListener("change", () => {
  if (window.scanbook.lastResult) showResults(window.scanbook.lastResult);
});

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  if (!parsed) return;
  $("submit-error").hidden = true;
  $("row-results").hidden = true;
  submit.disabled = true;
  try {
    const body = { changes: parsed.rows.map((r) => r.change) };
    // First what it would do; it runs only once the official confirms.
    const counts = await api("POST", "/api/admin/status-changes/preview", body);
    if (!(await askToRun(counts))) {
      showError($("submit-error"), t("adm_confirm_cancelled"));
      return;
    }
    const queued = await api("POST", "/api/admin/status-changes", body);
    const state = await watchJob(queued.job_id, (s) => renderJob(s, queued.job_id,
                                                                  { rows: true }));
    if (state.state === "finished") {
      window.scanbook.lastResult = state.result;
      $("only-problems").checked = errorsByRow(state.result).size > 0;
      showResults(state.result);
    }
  } catch (error) {
    showError($("submit-error"), error);
  } finally {
    submit.disabled = false;
  }
});

kit.ready();
