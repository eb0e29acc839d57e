// 开启通知 on the home card: this browser gets the citizen's status changes and announcements
// as system notifications while the page is closed (Web Push, docs/push.md); the service
// worker (sw.js) shows them. Without push, a change to yellow or red comes by SMS.
import { getJSON, t } from "./common.js";
import { csrfFetch } from "./csrf.js";

const $ = (id) => document.getElementById(id);
const box = $("push-box");
const api = window.scanbook || (window.scanbook = {});
let savedId = null; // this browser's subscription on the server (for 关闭通知)

function show(state, text = "") {
  api.push = state;
  box.dataset.push = state;
  $("push-on").hidden = ["on", "working", "unsupported", "denied"].includes(state);
  $("push-off").hidden = state !== "on";
  $("push-state").hidden = !text;
  $("push-state").textContent = text;
}

function keyBytes(b64) {
  const text = atob(b64.replace(/-/g, "+").replace(/_/g, "/") + "=".repeat((4 - (b64.length % 4)) % 4));
  return Uint8Array.from(text, (c) => c.charCodeAt(0));
}

function sameKey(subscription, key) {
  const had = subscription.options?.applicationServerKey;
  if (!had) return true; // the browser does not say: keep it
  const a = new Uint8Array(had);
  return a.length === key.length && a.every((byte, i) => byte === key[i]);
}

async function worker() {
  await navigator.serviceWorker.register("/sw.js");
  return navigator.serviceWorker.ready; // subscribing needs an active worker
}

async function save(subscription) {
  const response = await csrfFetch("/api/me/push-subscriptions", {
    method: "POST", headers: { "Content-Type": "application/json", Accept: "application/json" },
    body: JSON.stringify(subscription.toJSON()) });
  if (!response.ok) throw new Error(`push-subscriptions ${response.status}`);
  savedId = (await response.json()).id;
}

async function enable() {
  show("working", t("push_working"));
  try {
    if (await Notification.requestPermission() !== "granted") {
      show("denied", t("push_denied"));
      return;
    }
    const registration = await worker();
    const key = keyBytes((await getJSON("/api/push/key")).public_key);
    let subscription = await registration.pushManager.getSubscription();
    if (subscription && !sameKey(subscription, key)) { // made for another server key
      await subscription.unsubscribe();
      subscription = null;
    }
    subscription = subscription || await registration.pushManager.subscribe({
      userVisibleOnly: true, applicationServerKey: key });
    await save(subscription);
    show("on", t("push_on"));
  } catch (error) {
    api.pushError = String(error);
    show("failed", t("push_failed"));
  }
}

async function disable() {
  try {
    const registration = await worker();
    const subscription = await registration.pushManager.getSubscription();
    if (savedId !== null) {
      await csrfFetch(`/api/me/push-subscriptions/${savedId}`, { method: "DELETE" });
    }
    if (subscription) await subscription.unsubscribe();
    savedId = null;
    show("off", t("push_off"));
  } catch (error) {
    api.pushError = String(error);
    show("failed", t("push_failed"));
  }
}

// Signing out here stops this browser's notifications: the next citizen of a shared phone
// must not see them. keepalive: the request outlives the page the form navigates away from.
function forgetOnSignOut() {
  for (const form of document.querySelectorAll('form[action="/logout"]')) {
    form.addEventListener("submit", () => {
      if (savedId === null) return;
      csrfFetch(`/api/me/push-subscriptions/${savedId}`, { method: "DELETE", keepalive: true })
        .catch(() => {});
      navigator.serviceWorker.getRegistration("/")
        .then((registration) => registration?.pushManager.getSubscription())
        .then((subscription) => subscription?.unsubscribe()).catch(() => {});
    });
  }
}

// On load: a browser that already has a subscription tells the server again (it may have
// been made while another citizen was signed in here: the server moves it to this one).
async function start() {
  box.hidden = false;
  if (!("serviceWorker" in navigator) || !("PushManager" in window)
      || !("Notification" in window)) {
    show("unsupported", t("push_unsupported"));
    return;
  }
  if (Notification.permission === "denied") {
    show("denied", t("push_denied"));
    return;
  }
  $("push-on").addEventListener("click", enable);
  $("push-off").addEventListener("click", disable);
  forgetOnSignOut();
  try {
    const registration = await navigator.serviceWorker.getRegistration("/");
    const subscription = await registration?.pushManager.getSubscription();
    if (subscription && Notification.permission === "granted") {
      await save(subscription);
      show("on", t("push_on"));
      return;
    }
  } catch (error) {
    api.pushError = String(error);
  }
  show("off");
}

if (box) start();
