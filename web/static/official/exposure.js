// The exposure form: everyone checked in at the venue in the window gets the status (a job).
// Times are entered in Beijing time and sent with +08:00.
const kit = await import(`./kit.js${new URL(import.meta.url).search}`);
const { api, askToRun, renderJob, showError, t, watchJob } = kit;

const $ = (id) => document.getElementById(id);
const form = $("exposure-form");
const status = $("status");
const venueInput = $("venue-id");

function beijing(value) {
  // datetime-local gives "2022-05-01T08:00" (or with seconds): the console's clock is Beijing.
  return value ? `${value}+08:00` : value;
}

function syncPopup() {
  const popup = status.value === "popup";
  for (const node of document.querySelectorAll(".popup-only")) node.hidden = !popup;
  $("popup-kind").required = popup;
}

function showVenue() {
  const option = document.querySelector(`#venue-list option[value="${CSS.escape(venueInput.value)}"]`);
  $("venue-name").textContent = option ? option.textContent : "";
}

// Default window: the last two hours, to the minute.
function defaults() {
  const now = new Date(Date.now() + 8 * 3600 * 1000); // Beijing wall clock as UTC fields
  const end = now.toISOString().slice(0, 16);
  const start = new Date(now.getTime() - 2 * 3600 * 1000).toISOString().slice(0, 16);
  if (!$("start").value) $("start").value = start;
  if (!$("end").value) $("end").value = end;
}

status.addEventListener("change", syncPopup);
venueInput.addEventListener("input", showVenue);
syncPopup();
showVenue();
defaults();

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  if (!form.reportValidity()) return;
  const error = $("submit-error");
  error.hidden = true;
  const body = {
    venue_id: Number(venueInput.value),
    start: beijing($("start").value),
    end: beijing($("end").value),
    status: status.value,
    reason: $("reason").value.trim(),
  };
  if (status.value === "popup") body.popup_kind = $("popup-kind").value;
  const button = $("exposure-submit");
  button.disabled = true;
  try {
    // First what it would do; it runs only once the official confirms.
    const counts = await api("POST", "/api/admin/exposures/preview", body);
    if (!(await askToRun(counts))) {
      showError(error, t("adm_confirm_cancelled"));
      return;
    }
    const queued = await api("POST", "/api/admin/exposures", body);
    await watchJob(queued.job_id, (s) => renderJob(s, queued.job_id));
  } catch (failure) {
    showError(error, failure.status === 404 ? t("adm_venue_unknown") : failure);
  } finally {
    button.disabled = false;
  }
});

kit.ready();
