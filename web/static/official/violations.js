// Violations: record one (suspends every logbook the registrar owns) or lift one (they come
// back, unless another is in force); both are jobs — the page reloads when the job is done.
const kit = await import(`./kit.js${new URL(import.meta.url).search}`);
const { api, renderJob, showError, watchJob } = kit;

const $ = (id) => document.getElementById(id);

async function run(request, errorNode, button) {
  errorNode.hidden = true;
  button.disabled = true;
  try {
    const queued = await request();
    const state = await watchJob(queued.job_id, (s) => renderJob(s, queued.job_id));
    if (state.state === "finished") {
      document.body.dataset.done = "1";
      setTimeout(() => location.reload(), 600); // the list shows the new state
    }
  } catch (error) {
    showError(errorNode, error);
  } finally {
    button.disabled = false;
  }
}

$("violation-form")?.addEventListener("submit", (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  if (!form.reportValidity()) return;
  run(() => api("POST", "/api/admin/violations", {
    citizen_id: Number($("violation-citizen").value),
    reason: $("violation-reason").value.trim(),
  }), $("violation-error"), $("violation-submit"));
});

for (const form of document.querySelectorAll(".lift-form")) {
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const reason = form.querySelector("input[name=reason]").value.trim();
    run(() => api("POST", `/api/admin/violations/${form.dataset.violationId}/lift`,
                  reason ? { reason } : {}),
        $("violation-error"), form.querySelector("button"));
  });
}

kit.ready();
