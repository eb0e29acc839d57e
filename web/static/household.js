// My household (GET/POST/DELETE /api/me/dependants): the dependants I check in with me.
import { el, getJSON, statusLabel, t } from "./common.js";
import { csrfFetch } from "./csrf.js";

const list = document.getElementById("household");
const empty = document.getElementById("household-empty");
const form = document.getElementById("household-form");
const errorBox = document.getElementById("household-error");
window.scanbook = { loaded: false };

function row(d) {
  const remove = el("button", { type: "button", class: "linkish" }, t("household_remove"));
  remove.addEventListener("click", async () => {
    const response = await csrfFetch(`/api/me/dependants/${d.id}`, { method: "DELETE" });
    if (response.ok) load();
  });
  return el("li", { class: "visit", dataset: { id: d.id } }, el("strong", {}, d.name_masked),
    ` · ${d.id_masked} · ${statusLabel(d.status)}`,
    d.minor ? el("span", { class: "minor-label" }, t("minor")) : null, " ", remove);
}

async function load() {
  const { items } = await getJSON("/api/me/dependants");
  list.replaceChildren(...items.map(row));
  empty.hidden = items.length > 0;
  window.scanbook.loaded = true;
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  errorBox.hidden = true;
  const data = Object.fromEntries(new FormData(form));
  const response = await csrfFetch("/api/me/dependants", {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "application/json" },
    body: JSON.stringify(data),
  });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    errorBox.textContent = response.status === 404 ? t("household_not_found") : body.message;
    errorBox.hidden = false;
    return;
  }
  form.reset();
  load();
});

load();
