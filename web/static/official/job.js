// A job's page: progress while it runs, then its result — for a status-change batch, the
// rows that failed (invalid or unknown ID numbers), by row of the uploaded file.
const kit = await import(`./kit.js${new URL(import.meta.url).search}`);
const { api, el, errorText, renderJob, showError, t, watchJob } = kit;

const config = JSON.parse(document.getElementById("job-config").textContent);

function showRowErrors(result) {
  const errors = (result && result.errors) || [];
  if (!errors.length) return;
  const body = document.querySelector("#row-table tbody");
  // Row numbers are the request's (0-based); a file with a header row has them one line on.
  body.replaceChildren(...errors.slice(0, 1000).map((error) =>
    el("tr", { class: "row-bad" }, el("td", {}, error.row === null ? "—" : error.row + 1),
       el("td", { class: "mono" }, error.id_number || "—"),
       el("td", { class: "row-result" }, errorText(error)))));
  document.getElementById("row-results").hidden = false;
}

// Who the job did not change (kept: already equal or stricter, or changed since an undone
// batch; not found), masked as stored — the exceptions an official follows up.
const SHOW_PEOPLE = 1000;
function showPeople(result) {
  const people = ((result && result.people) || []).filter((p) => p.result !== "changed");
  if (!people.length) return;
  const body = document.querySelector("#people-table tbody");
  body.replaceChildren(...people.slice(0, SHOW_PEOPLE).map((p) =>
    el("tr", { dataset: { result: p.result, citizen: p.citizen_id ?? "" } },
       el("td", {}, p.name || "—"), el("td", { class: "mono" }, p.id_number || "—"),
       el("td", {}, t(p.note === "changed_since" ? "adm_person_changed_since"
                      : `adm_person_${p.result}`)),
       el("td", {}, p.before ? t(`status_${p.before}`) : "—"))));
  const more = people.length - SHOW_PEOPLE + (result.people_omitted || 0);
  document.getElementById("people-more").hidden = more <= 0;
  document.getElementById("people-more").textContent = t("adm_rows_more").replace("{n}", more);
  document.getElementById("people-results").hidden = false;
}

// Undo (status changes, exposures): a new job, whose page we go to.
async function undo() {
  if (!window.confirm(t("adm_undo_confirm").replace("{batch}", config.batch_id))) return;
  const button = document.getElementById("undo-button");
  button.disabled = true;
  try {
    const queued = await api("POST", `/api/admin/jobs/${encodeURIComponent(config.job_id)}/undo`);
    location.assign(`/admin/jobs/${encodeURIComponent(queued.job_id)}`);
  } catch (error) {
    showError(document.getElementById("undo-error"), error);
    button.disabled = false;
  }
}

kit.ready(); // the undo button is wired once the job has finished

try {
  const state = await watchJob(config.job_id, (s) => renderJob(s, config.job_id,
                                                    { rows: config.kind === "status_changes" }));
  if (state.state === "finished") {
    showRowErrors(state.result);
    showPeople(state.result);
  }
  const undoBox = document.getElementById("undo");
  if (undoBox && state.state === "finished") {
    undoBox.hidden = false;
    document.getElementById("undo-button").addEventListener("click", undo);
  }
} catch (error) {
  showError(document.getElementById("job-error"), error);
}
