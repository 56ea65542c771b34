// The courier app's service worker, served from /courier/sw.js (scope /courier/) by the courier_app
// view, which fills in the version and the static prefix. It keeps the app shell and the last run
// available with no network; it never caches writes. Records themselves live in the page's IndexedDB
// outbox: on Background Sync the worker wakes the open app to send them.
const VERSION = "__VERSION__";
const STATIC = "__STATIC__";
const SHELL_CACHE = `courier-shell-${VERSION}`;
const RUN_CACHE = "courier-run";
const SHELL = [
  "/courier/",
  "/courier/manifest.webmanifest",
  `${STATIC}/courier/app.js`,
  `${STATIC}/courier/app.css`,
  `${STATIC}/css/app.css`,
  `${STATIC}/courier/icon-192.png`,
  `${STATIC}/courier/icon-512.png`,
  `${STATIC}/courier/icon-maskable-512.png`,
];

self.addEventListener("install", (event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(SHELL_CACHE);
    // cache: "reload" skips the HTTP cache, so a new version never precaches old files
    await cache.addAll(SHELL.map((url) => new Request(url, { cache: "reload", credentials: "same-origin" })));
    await self.skipWaiting();
  })());
});

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) {
      if (name.startsWith("courier-shell-") && name !== SHELL_CACHE) await caches.delete(name);
    }
    await self.clients.claim();
  })());
});

async function networkFirst(request, cacheName, { ignoreSearch = false } = {}) {
  const cache = await caches.open(cacheName);
  try {
    const response = await fetch(request);
    if (response.ok && !response.redirected) {
      const copy = response.clone();
      const headers = new Headers(copy.headers);
      headers.set("X-Courier-Cache", new Date().toISOString());
      await cache.put(request, new Response(await copy.blob(), { status: copy.status, headers }));
    }
    return response;
  } catch (err) {
    const cached = await cache.match(request, { ignoreSearch });
    if (cached) return cached;
    throw err;
  }
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return; // writes go straight to the network, never to a cache
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (url.pathname === "/api/v1/courier/run") {
    // The run: always fresh when there is a network; the last one received when there is not (the
    // X-Courier-Cache header tells the page when it was saved).
    event.respondWith(networkFirst(request, RUN_CACHE, { ignoreSearch: true }));
    return;
  }
  if (request.mode === "navigate" && url.pathname === "/courier/") {
    // The shell: fresh when online (new token, new version), the precached one when not.
    event.respondWith((async () => {
      try {
        const response = await fetch(request);
        if (response.ok && !response.redirected) {
          const cache = await caches.open(SHELL_CACHE);
          await cache.put("/courier/", response.clone());
        }
        return response;
      } catch {
        const cached = await caches.match("/courier/", { cacheName: SHELL_CACHE });
        return cached || Response.error();
      }
    })());
    return;
  }
  if (SHELL.includes(url.pathname)) {
    event.respondWith((async () => {
      const cached = await caches.match(url.pathname, { cacheName: SHELL_CACHE });
      return cached || fetch(request);
    })());
  }
});

// Background Sync (Chrome/Android): ask every open app window to send its outbox now.
self.addEventListener("sync", (event) => {
  if (event.tag !== "outbox") return;
  event.waitUntil((async () => {
    const windows = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
    for (const client of windows) client.postMessage({ type: "drain" });
  })());
});

self.addEventListener("message", (event) => {
  if (event.data?.type === "skip-waiting") self.skipWaiting();
});
