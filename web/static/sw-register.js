// The phone pages are installable and open without signal: register the service worker
// (web/static/sw.js, served at /sw.js). Officials' screens do without it.
if ("serviceWorker" in navigator && !/^\/(admin|wallboard)/.test(location.pathname)) {
  navigator.serviceWorker.register("/sw.js").catch(() => {});
}
