// 反扫 on the live page: the registrar scans a visitor's personal code with the phone's
// camera and the visitor is checked in (POST /api/logbooks/{id}/visitor-scans). Decoding uses
// the browser's BarcodeDetector when it reads QR codes, else the vendored polyfill (ZXing in
// WebAssembly, web/static/vendor: nothing is fetched from elsewhere). Typing the visitor's
// name and ID number on the venue page stays the fallback.
import { el, statusLabel, t } from "./common.js";
import { csrfFetch } from "./csrf.js";

const toggle = document.getElementById("camera-toggle");
const video = document.getElementById("camera");
const status = document.getElementById("scan-status");
const result = document.getElementById("scan-result");
const logbook = document.getElementById("scan-logbook");
const api = window.scanbook || (window.scanbook = {});
api.scans = [];
const SCAN_EVERY_MS = 250;
const SAME_CODE_MS = 5000; // one code held in front of the camera is sent once

let stream = null;
let timer = null;
let detector = null;
let last = { code: null, at: 0 };

function say(text, bad) {
  status.textContent = text;
  status.className = bad ? "notice notice-error" : "notice";
  status.hidden = !text;
}

async function makeDetector() {
  const native = globalThis.BarcodeDetector;
  if (native && (await native.getSupportedFormats?.() || []).includes("qr_code")) {
    return new native({ formats: ["qr_code"] });
  }
  const poly = globalThis.BarcodeDetectionAPI;
  if (!poly) throw new Error("no QR decoder");
  poly.setZXingModuleOverrides({
    locateFile: (path, prefix) => (path.endsWith(".wasm") ? `/static/vendor/${path}` : prefix + path),
  });
  return new poly.BarcodeDetector({ formats: ["qr_code"] });
}

async function send(code) {
  say(t("checking_in"));
  const response = await csrfFetch(`/api/logbooks/${logbook.value}/visitor-scans`, {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "application/json" },
    body: JSON.stringify({ code }),
  });
  const body = await response.json().catch(() => ({}));
  api.scans.push({ status: response.status, body });
  if (!response.ok) {
    say(body.error === "code_expired" ? t("visitor_code_expired") : (body.message || t("scan_failed")), true);
    return;
  }
  say("");
  result.replaceChildren(el("article", {
    class: `alert-card status-${body.status}`, dataset: { id: body.id, status: body.status },
  },
  el("strong", {}, `${t("visitor_checked_in")} · ${statusLabel(body.status)}`),
  el("p", {}, `${body.name} · ${body.id_number}`),
  body.minor ? el("p", { class: "minor-label" }, t("minor")) : null));
}

async function scanFrame() {
  if (!stream || video.readyState < 2) return;
  let codes = [];
  try {
    codes = await detector.detect(video);
  } catch {
    return; // a frame the decoder could not take: the next one
  }
  const code = codes.map((c) => c.rawValue).find((v) => v.startsWith("sbp_"));
  if (!code) return;
  const now = Date.now();
  if (code === last.code && now - last.at < SAME_CODE_MS) return;
  last = { code, at: now };
  await send(code);
}

async function start() {
  toggle.disabled = true;
  try {
    detector = detector || await makeDetector();
    stream = await navigator.mediaDevices.getUserMedia({
      video: { facingMode: "environment" }, audio: false,
    });
  } catch (error) {
    stream = null;
    toggle.disabled = false;
    say(t("camera_unavailable"), true);
    api.cameraError = String(error);
    return;
  }
  video.srcObject = stream;
  video.hidden = false;
  await video.play().catch(() => {});
  toggle.textContent = t("camera_stop");
  toggle.disabled = false;
  api.scanning = true;
  const loop = async () => {
    await scanFrame();
    if (stream) timer = setTimeout(loop, SCAN_EVERY_MS);
  };
  loop();
}

function stop() {
  clearTimeout(timer);
  stream?.getTracks().forEach((track) => track.stop());
  stream = null;
  video.hidden = true;
  video.srcObject = null;
  toggle.textContent = t("camera_start");
  api.scanning = false;
}

toggle.addEventListener("click", () => (stream ? stop() : start()));
if (!logbook.options.length) toggle.disabled = true; // no active logbook to check in at
