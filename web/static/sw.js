// Scanbook's service worker (served at /sw.js, scope "/"): the phone pages open without
// signal. It keeps the offline scan page (/offline/scan, with the modules and styles it
// loads) and every /static/ file the pages fetched; a scan page (/s/{code}) that cannot be
// fetched is answered with the offline scan page, which queues the check-in with its time
// (offline.js) and sends it when the phone is back online (the scanned_at rule).
// It also shows the citizen's pushed notices as system notifications while the page is
// closed (Web Push: docs/push.md): one tag per kind, so a newer status change replaces the
// older on the screen; a tap opens (or focuses) the citizen's page.
const CACHE = "scanbook-v1";
const SHELL = "/offline/scan";

async function precache() {
  const cache = await caches.open(CACHE);
  const response = await fetch(SHELL, { credentials: "same-origin" });
  if (!response.ok) return;
  const html = await response.clone().text();
  await cache.put(SHELL, response);
  // the shell's scripts, styles and the modules its import map names
  const urls = new Set([...html.matchAll(/(?:src|href)="(\/static\/[^"]+)"/g)].map((m) => m[1]));
  for (const m of html.matchAll(/"(\/static\/[^"]+\?v=[^"]+)"/g)) urls.add(m[1]);
  await Promise.all([...urls].map((url) => cache.add(url).catch(() => {})));
}

self.addEventListener("install", (event) => {
  event.waitUntil(precache().then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) if (name !== CACHE) await caches.delete(name);
    await self.clients.claim();
  })());
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin !== location.origin) return;
  if (request.mode === "navigate" && url.pathname.startsWith("/s/")) {
    event.respondWith(fetch(request).catch(async () => (await caches.match(SHELL))
      || Response.error()));
    return;
  }
  if (url.pathname.startsWith("/static/")) {
    // network first (a deploy changes them), the cached copy when there is no network
    event.respondWith(fetch(request).then((response) => {
      if (response.ok) {
        const copy = response.clone();
        caches.open(CACHE).then((cache) => cache.put(request, copy));
      }
      return response;
    }).catch(async () => (await caches.match(request)) || Response.error()));
  }
});

self.addEventListener("push", (event) => {
  let data = {};
  try {
    data = event.data ? event.data.json() : {};
  } catch {
    data = { body: event.data ? event.data.text() : "" };
  }
  const zh = (self.navigator.language || "zh").toLowerCase().startsWith("zh");
  const text = zh || !data.en ? data : data.en;
  const urgent = data.status === "red" || data.status === "yellow";
  event.waitUntil(self.registration.showNotification(text.title || "扫码登记", {
    body: text.body || "", icon: "/static/icon.svg", badge: "/static/icon.svg",
    lang: zh ? "zh-CN" : "en", tag: data.tag || "scanbook", renotify: true,
    requireInteraction: urgent, timestamp: data.at ? Date.parse(data.at) : Date.now(),
    data: { url: data.url || "/", kind: data.kind || null, id: data.id ?? null,
            status: data.status || null } }));
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  let url = new URL(event.notification.data?.url || "/", self.location.origin);
  if (url.origin !== self.location.origin) url = new URL("/", self.location.origin);
  event.waitUntil((async () => {
    const windows = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
    const open = windows.find((client) => new URL(client.url).pathname === url.pathname);
    if (open) return open.focus();
    return self.clients.openWindow(url.href);
  })());
});
