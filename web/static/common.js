// Shared helpers for the page modules: strings, status labels, times, a tiny DOM builder.

const strings = JSON.parse(document.getElementById("i18n")?.textContent || "{}");

export function t(key) {
  return strings[key] ?? key;
}

export function statusLabel(status) {
  return t(`status_${status}`);
}

export function popupLabel(kind) {
  return kind ? t(`popup_${kind}`) : "";
}

export function popupHint(kind) {
  return kind ? t(`popup_hint_${kind}`) : "";
}

// Timestamps arrive as ISO 8601 in Beijing time (+08:00): show them as written.
export function clockTime(iso) {
  return typeof iso === "string" ? iso.slice(11, 19) : "";
}

export function dayOf(iso) {
  return typeof iso === "string" ? iso.slice(0, 10) : "";
}

export function beijingNow() {
  return new Date().toLocaleTimeString("zh-CN", { timeZone: "Asia/Shanghai", hour12: false });
}

// el("li", {class: "x", dataset: {id: 1}}, "text", child) — text is always set as text,
// never as HTML, so nothing from the server can inject markup.
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "dataset") Object.assign(node.dataset, value);
    else if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export async function getJSON(url) {
  const response = await fetch(url, {
    credentials: "same-origin",
    headers: { Accept: "application/json" },
  });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const err = new Error(body.message || response.statusText);
    err.status = response.status;
    throw err;
  }
  return body;
}
