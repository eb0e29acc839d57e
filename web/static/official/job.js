// A job's page: progress while it runs, then its result — for a status-change batch, the
// rows that failed (invalid or unknown ID numbers), by row of the uploaded file.
const kit = await import(`./kit.js${new URL(import.meta.url).search}`);
const { el, errorText, renderJob, showError, t, watchJob } = kit;

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

try {
  const state = await watchJob(config.job_id, (s) => renderJob(s, config.job_id,
                                                    { rows: config.kind === "status_changes" }));
  if (state.state === "finished") showRowErrors(state.result);
} catch (error) {
  showError(document.getElementById("job-error"), error);
}
