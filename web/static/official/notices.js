// Announcements: published to every citizen's /ws/me at once.
const kit = await import(`./kit.js${new URL(import.meta.url).search}`);
const { api, el, showError, when } = kit;

const $ = (id) => document.getElementById(id);
const text = $("notice-text"); // absent for a role that may not announce (a viewer)

text?.addEventListener("input", () => {
  $("notice-count").textContent = `${text.value.length} / 2000`;
});

$("notice-form")?.addEventListener("submit", async (event) => {
  event.preventDefault();
  $("notice-error").hidden = true;
  $("notice-done").hidden = true;
  if (!event.currentTarget.reportValidity()) return;
  const button = $("notice-submit");
  button.disabled = true;
  try {
    const notice = await api("POST", "/api/admin/notices", { text: text.value.trim() });
    $("notice-list").prepend(el("li", { class: "card fresh", dataset: { noticeId: notice.id } },
      el("p", { class: "card-meta" }, `#${notice.id} · ${when(notice.at)}`),
      el("p", { class: "card-text" }, notice.text)));
    $("notice-empty").hidden = true;
    $("notice-done").hidden = false;
    text.value = "";
    $("notice-count").textContent = "0 / 2000";
  } catch (error) {
    showError($("notice-error"), error);
  } finally {
    button.disabled = false;
  }
});

kit.ready();
