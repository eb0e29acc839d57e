// The audited trace: one citizen, unmasked — who they are, where they checked in, how their
// status changed. Every search is written to the audit log with its purpose, found or not.
const kit = await import(`./kit.js${new URL(import.meta.url).search}`);
const { api, el, showError, t, when } = kit;

const $ = (id) => document.getElementById(id);
const form = $("trace-form");

function statusText(status, popupKind) {
  const label = t(`status_${status}`);
  return popupKind ? `${label}（${t(`popup_${popupKind}`)}）` : label;
}

function badge(status, popupKind) {
  return el("span", { class: `pill status-pill status-${status}` }, statusText(status, popupKind));
}

function fact(label, value) {
  return el("div", {}, el("dt", {}, label), el("dd", {}, value ?? "—"));
}

// Unregistered visitors recorded under the number by registrars' proxy check-ins: the names
// given at the door (one the citizen's own once linked, others flagged).
function visitorFacts(visitors) {
  return visitors.map((v) => fact(t("adm_visitor"), `${v.name}${v.citizen_id
    ? ` · ${t("adm_visitor_linked")}` : ` · ${t("adm_visitor_unlinked")}`}`));
}

function render(result) {
  const c = result.citizen;
  const visitors = result.visitors || [];
  $("trace-person").replaceChildren(...(c ? [
    fact(t("name"), c.name), fact(t("id_number"), el("span", { class: "mono" }, c.id_number)),
    fact(t("adm_phone"), c.phone || "—"), fact(t("adm_status_now"), badge(c.status, c.popup_kind)),
    fact(t("reason"), c.reason || "—"), fact(t("adm_status_since"), when(c.status_at)),
    fact(t("adm_citizen"), `#${c.id}`)] : [
    fact(t("adm_citizen"), t("adm_not_registered")),
    fact(t("id_number"), el("span", { class: "mono" }, visitors[0]?.id_number || "—"))]),
  ...visitorFacts(visitors));
  $("trace-count").textContent = `(${result.checkins.length})`;
  const rows = result.checkins.map((k) => el("tr", { dataset: { checkinId: k.id } },
    el("td", { class: "nowrap" }, when(k.at)), el("td", {}, `${k.venue_name} #${k.venue_id}`),
    el("td", {}, k.district), el("td", {}, k.address),
    el("td", {}, k.logbook_label, k.via === "proxy" ? ` · ${t("via_proxy")}` : "",
      k.visitor ? ` · ${t("adm_visitor_as")}${k.visitor.name}` : ""),
    el("td", {}, badge(k.status, k.popup_kind))));
  $("trace-checkins").tBodies[0].replaceChildren(...(rows.length ? rows
    : [el("tr", {}, el("td", { colspan: 6, class: "muted" }, t("adm_no_checkins")))]));
  const history = (result.status_history || []).map((h) => el("tr", {},
    el("td", { class: "nowrap" }, when(h.at)), el("td", {}, t(`status_${h.old_status}`)),
    el("td", {}, statusText(h.new_status, h.popup_kind)), el("td", {}, h.reason),
    el("td", {}, h.batch_id ? `#${h.batch_id}` : "—")));
  $("trace-history").tBodies[0].replaceChildren(...(history.length ? history
    : [el("tr", {}, el("td", { colspan: 5, class: "muted" }, t("adm_no_history")))]));
  $("trace-audit").textContent = t("adm_trace_recorded").replace("{id}", result.audit_id);
  $("trace-result").hidden = false;
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  $("trace-error").hidden = true;
  $("trace-result").hidden = true;
  if (!form.reportValidity()) return;
  const params = new URLSearchParams({
    id_number: $("trace-id").value.trim().toUpperCase(),
    purpose: $("trace-purpose").value.trim(),
  });
  if ($("trace-since").value) params.set("since", `${$("trace-since").value}T00:00:00+08:00`);
  const button = $("trace-submit");
  button.disabled = true;
  try {
    render(await api("GET", `/api/admin/trace?${params}`));
  } catch (error) {
    // A search that finds no one is audited too.
    showError($("trace-error"), error.status === 404
      ? `${t("adm_trace_none")} ${t("adm_trace_still_audited")}` : error);
  } finally {
    button.disabled = false;
  }
});

kit.ready();
