// The card's photo: pressing it for 3 seconds (finger, mouse, or holding Enter/Space) opens
// the retake dialog — the camera, or a file — and the new photo is uploaded at once.
import { t } from "./common.js";
import { csrfFetch } from "./csrf.js";

export const HOLD_MS = 3000;

export function setupPhoto({ onUploaded, counters }) {
  const button = document.getElementById("photo");
  const dialog = document.getElementById("retake");
  const statusBox = document.getElementById("retake-status");
  let timer = null;
  let pressedAt = 0;

  // How long the last press lasted, by the page's clock (pressMs: when it ended, heldMs: when
  // it opened the dialog), for tests: the test's own clock adds the browser's latency.
  function cancel() {
    if (timer) counters.pressMs = performance.now() - pressedAt;
    clearTimeout(timer);
    timer = null;
    button.classList.remove("pressing");
  }

  function open() {
    counters.heldMs = performance.now() - pressedAt;
    cancel();
    counters.retakeOpened += 1;
    statusBox.hidden = true;
    if (typeof dialog.showModal === "function") dialog.showModal();
    else dialog.setAttribute("open", "");
  }

  function start() {
    if (timer) return;
    counters.pressStarted += 1;
    pressedAt = performance.now();
    button.classList.add("pressing"); // the ring fills over HOLD_MS (style.css)
    timer = setTimeout(open, HOLD_MS);
  }

  button.addEventListener("pointerdown", (event) => {
    if (event.button !== 0) return;
    button.setPointerCapture?.(event.pointerId);
    start();
  });
  for (const name of ["pointerup", "pointercancel", "lostpointercapture"]) {
    button.addEventListener(name, cancel);
  }
  button.addEventListener("keydown", (event) => {
    if ((event.key === "Enter" || event.key === " ") && !event.repeat) {
      event.preventDefault();
      start();
    }
  });
  button.addEventListener("keyup", cancel);
  button.addEventListener("blur", cancel);
  button.addEventListener("contextmenu", (event) => event.preventDefault()); // long-press menu

  async function upload(file) {
    if (!file) return;
    statusBox.textContent = t("photo_uploading");
    statusBox.hidden = false;
    const data = new FormData();
    data.append("photo", file, file.name || "photo.jpg");
    let response;
    let body = {};
    try {
      response = await csrfFetch("/api/me/photo", { method: "POST", body: data });
      body = await response.json().catch(() => ({}));
    } catch {
      statusBox.textContent = t("network_error");
      return;
    }
    if (!response.ok) {
      statusBox.textContent = response.status === 413 ? t("photo_too_large")
        : (body.message || t("photo_failed"));
      return;
    }
    counters.photoUploads += 1;
    onUploaded(body.photo_url);
    dialog.close?.();
    dialog.removeAttribute("open");
  }

  for (const id of ["photo-camera", "photo-file"]) {
    const input = document.getElementById(id);
    input.addEventListener("change", () => {
      upload(input.files?.[0]);
      input.value = "";
    });
  }
}
