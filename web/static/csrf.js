// CSRF token for the page's own state-changing requests (web/security.py).
//
// A signed-in browser's POST/PUT/PATCH/DELETE must carry the session's token: the server keeps
// a readable copy in the `scanbook_csrf` cookie. Use csrfFetch in place of fetch, or add
// csrfHeaders() to your own:
//
//   import { csrfFetch } from "/static/csrf.js";
//   const response = await csrfFetch("/api/scan", { method: "POST", body: JSON.stringify({ code }),
//                                                   headers: { "Content-Type": "application/json" } });
//
// Importing this module also adds the token (hidden field `csrf_token`) to every same-origin
// POST form on the page when it is submitted, e.g. the sign-out button.

export function csrfToken() {
  const match = document.cookie.match(/(?:^|;\s*)scanbook_csrf=([^;]*)/);
  return match ? decodeURIComponent(match[1]) : "";
}

export function csrfHeaders(headers = {}) {
  const out = new Headers(headers);
  const token = csrfToken();
  if (token) out.set("X-CSRF-Token", token);
  return out;
}

export function csrfFetch(url, options = {}) {
  return fetch(url, { credentials: "same-origin", ...options,
                      headers: csrfHeaders(options.headers) });
}

document.addEventListener("submit", (event) => {
  const form = event.target;
  if (!(form instanceof HTMLFormElement) || form.method.toLowerCase() !== "post") return;
  if (new URL(form.action, location.href).origin !== location.origin) return;
  const token = csrfToken();
  if (!token) return;
  let field = form.querySelector('input[name="csrf_token"]');
  if (!field) {
    field = document.createElement("input");
    field.type = "hidden";
    field.name = "csrf_token";
    form.append(field);
  }
  field.value = token;
}, true);
