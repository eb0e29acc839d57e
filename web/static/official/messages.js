// Citizens' messages as conversations: reply (marks handled unless unticked), mark handled or
// open again. Each card is redrawn from the API's answer.
const kit = await import(`./kit.js${new URL(import.meta.url).search}`);
const { api, el, showError, t, when } = kit;

function redraw(card, message) {
  card.dataset.handled = String(message.handled);
  const pill = card.querySelector(".msg-state");
  pill.className = `pill msg-state ${message.handled ? "pill-handled" : "pill-waiting"}`;
  pill.textContent = t(message.handled ? "adm_msg_handled_one" : "adm_msg_waiting_one");
  card.querySelector(".msg-replies").replaceChildren(...message.replies.map((r) =>
    el("li", { class: `msg-reply ${r.from}` },
      el("span", { class: "card-meta" }, `${t(`adm_msg_from_${r.from}`)} · ${when(r.at)}`),
      el("span", { class: "card-text" }, r.text))));
  card.querySelector(".msg-toggle").textContent =
    t(message.handled ? "adm_msg_reopen" : "adm_msg_mark_handled");
}

for (const card of document.querySelectorAll(".message-card")) {
  const id = card.dataset.messageId;
  const form = card.querySelector("form");
  if (!form) continue; // a role that may not reply (a viewer) reads only
  const error = card.querySelector(".msg-error");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.hidden = true;
    const text = form.elements.text.value.trim();
    if (!text) {
      showError(error, t("adm_msg_empty"));
      return;
    }
    try {
      redraw(card, await api("POST", `/api/admin/messages/${id}/replies`,
        { text, handled: form.elements.handled.checked }));
      form.elements.text.value = "";
    } catch (failure) {
      showError(error, failure);
    }
  });
  card.querySelector(".msg-toggle").addEventListener("click", async () => {
    error.hidden = true;
    try {
      redraw(card, await api("POST", `/api/admin/messages/${id}/handled`,
        { handled: card.dataset.handled !== "true" }));
    } catch (failure) {
      showError(error, failure);
    }
  });
}

kit.ready();
