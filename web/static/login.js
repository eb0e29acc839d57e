// Sign-in by phone number and SMS code: POST /api/auth/otp, then /api/auth/verify (which sets
// the session cookie). A phone shared by several citizens asks which of them signs in.
import { el, t } from "./common.js";
import { csrfFetch } from "./csrf.js";

const form = document.getElementById("otp-form");
const phone = document.getElementById("otp-phone");
const code = document.getElementById("otp-code");
const send = document.getElementById("otp-send");
const submit = document.getElementById("otp-submit");
const statusBox = document.getElementById("otp-status");
const errorBox = document.getElementById("otp-error");
const choices = document.getElementById("otp-choices");
let countdown = null;

function say(box, text) {
  box.textContent = text;
  box.hidden = !text;
}

function cleanPhone() {
  return phone.value.replace(/[\s\-()]/g, "");
}

function post(url, body) {
  return csrfFetch(url, {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "application/json" },
    body: JSON.stringify(body),
  });
}

function errorText(response, body) {
  if (response.status === 401) return t("otp_wrong");
  if (response.status === 429) return t("otp_too_many");
  return body.message || t("network_error");
}

function wait(seconds) {
  clearInterval(countdown);
  let left = Math.max(1, Math.round(seconds));
  send.disabled = true;
  const tick = () => {
    if (left <= 0) {
      clearInterval(countdown);
      send.disabled = false;
      send.textContent = t("otp_resend");
      return;
    }
    send.textContent = t("otp_resend_in").replace("{n}", left);
    left -= 1;
  };
  tick();
  countdown = setInterval(tick, 1000);
}

send.addEventListener("click", async () => {
  say(errorBox, "");
  if (!/^(\+?86)?1[3-9]\d{9}$/.test(cleanPhone())) {
    say(errorBox, t("phone_invalid"));
    phone.focus();
    return;
  }
  send.disabled = true;
  let response;
  let body = {};
  try {
    response = await post("/api/auth/otp", { phone: cleanPhone() });
    body = await response.json().catch(() => ({}));
  } catch {
    send.disabled = false;
    say(errorBox, t("network_error"));
    return;
  }
  if (response.status === 202) {
    say(statusBox, t("otp_sent"));
    wait(body.resend_after || 60);
    code.focus();
  } else if (response.status === 429) {
    say(errorBox, t("otp_wait"));
    wait(body.retry_after || 60);
  } else {
    send.disabled = false;
    say(errorBox, errorText(response, body));
  }
});

function showChoices(list) {
  choices.replaceChildren(el("legend", {}, t("otp_choose")), ...list.map((c, i) =>
    el("label", { class: "choice" },
      el("input", { type: "radio", name: "citizen_id", value: c.citizen_id, required: true,
                    checked: i === 0 }),
      ` ${c.name_masked} · ${c.id_masked}`)));
  choices.hidden = false;
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  say(errorBox, "");
  if (!/^\d{6}$/.test(code.value.trim())) {
    say(errorBox, t("otp_code_invalid"));
    code.focus();
    return;
  }
  const payload = { phone: cleanPhone(), code: code.value.trim() };
  const chosen = choices.querySelector("input[name=citizen_id]:checked");
  if (!choices.hidden && chosen) payload.citizen_id = Number(chosen.value);
  submit.disabled = true;
  let response;
  let body = {};
  try {
    response = await post("/api/auth/verify", payload);
    body = await response.json().catch(() => ({}));
  } catch {
    submit.disabled = false;
    say(errorBox, t("network_error"));
    return;
  }
  submit.disabled = false;
  if (response.ok) {
    say(statusBox, t("signed_in_as"));
    location.assign(form.dataset.next || "/");
  } else if (response.status === 409 && body.detail?.choices) {
    showChoices(body.detail.choices);
    say(statusBox, t("otp_choose"));
  } else {
    say(errorBox, errorText(response, body));
  }
});
