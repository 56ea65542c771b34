// The courier app: today's run, scanning, and every record written first to an IndexedDB outbox,
// then sent to the courier API (docs/courier-api.md). One hand-written module, no build step.
//
// Outbox rules (docs/courier-app.md): a record is stored on the phone before anything else happens,
// with its own event id; files (signature, photo) go up first with their own ids, then the events in
// batches. applied/duplicate -> removed; rejected -> kept ("parked") and shown on the order;
// no network or 5xx -> retried later with back-off; any other 4xx on a batch -> parked and shown;
// 401/403 -> kept, and the courier is asked to log in again.

const API = "/api/v1/courier";
const STRINGS = JSON.parse(document.getElementById("courier-strings").textContent);
const CSRF = document.querySelector('meta[name="csrf-token"]').content;
const LANG = document.documentElement.lang || "vi";
// Who is logged in: every outbox row and the saved run carry it; nothing is sent, shown or kept for
// another user (docs/courier-app.md, "Log-out and shared phones").
const ME = document.querySelector('meta[name="courier-user"]')?.content || "";
const ME_NAME = document.querySelector('meta[name="courier-username"]')?.content || "";
const BATCH = 50;
const TIMER_MS = 30000;
const GEO_WAIT_MS = 2000;
const TONE = {
  created: "new", assigned: "progress", handed_to_courier: "progress", out_for_delivery: "progress",
  pickup_scheduled: "progress", picked_up: "progress", delivered: "done", delivered_to_agency: "done",
  failed_attempt: "warn", returned_to_agency: "bad", cancelled: "bad",
};
const FINISHED = new Set(["delivered", "picked_up", "delivered_to_agency", "returned_to_agency", "cancelled"]);
// The statuses in which the order's money is collected (courier.services.CASH_PROOF): delivered (the
// delivery's amount), or its dossier picked up (the pickup's fees), since taken to the agency or not.
const CASH_DONE = new Set(["delivered", "picked_up", "delivered_to_agency"]);

const $ = (sel) => document.querySelector(sel);

// The app's own messages (those the shell's strings do not carry), Vietnamese and English.
const OWN = {
  vi: {
    need_note: "Ghi rõ điều gì sai trước khi hủy bản ghi.",
    done_today: "Đã xong hôm nay",
    logout_waiting: "Còn %(num)s bản ghi chưa gửi lên máy chủ. Nếu đăng xuất, chúng vẫn được giữ trên máy này " +
      "nhưng chỉ được gửi khi bạn đăng nhập lại. Nên ở lại cho đến khi gửi xong.",
    logout_stay: "Ở lại và gửi",
    logout_anyway: "Vẫn đăng xuất",
    other_user: "%(num)s bản ghi của bưu tá %(user)s chưa gửi: được giữ trên máy này và chỉ gửi khi người đó " +
      "đăng nhập lại trên máy này. Tài khoản của bạn không gửi chúng.",
    refused_now: "%(item_id)s: %(why)s",
    id_mismatch: "Số CCCD không khớp với người nhận trên đơn: KHÔNG giao kết quả. Kiểm tra lại giấy tờ, " +
      "nhập đúng 4 số cuối rồi ghi nhận lại.",
    otp_mismatch: "Mã một lần không đúng: KHÔNG giao kết quả. Hỏi lại mã người dân nhận được rồi ghi nhận lại.",
    id_required: "Phải kiểm tra danh tính người nhận trước khi giao kết quả: nhập 4 số cuối CCCD hoặc mã một lần.",
    note_required: "Phải ghi rõ điều gì sai.",
    window: "Khung giờ giao",
    window_passed: "đã qua",
    due_was: "phải thu %(due)s",
    amount_not_stated: "chưa ghi số tiền",
  },
  en: {
    need_note: "Write what was wrong before cancelling the record.",
    done_today: "Done today",
    logout_waiting: "%(num)s records have not been sent to the server yet. If you log out, they stay on this " +
      "phone but are sent only when you log in again. Better stay until they are sent.",
    logout_stay: "Stay and send",
    logout_anyway: "Log out anyway",
    other_user: "%(num)s records of courier %(user)s are not sent yet: they are kept on this phone and sent " +
      "only when that courier logs in on it again. Your account does not send them.",
    refused_now: "%(item_id)s: %(why)s",
    id_mismatch: "The ID card does not match the receiver on the order: do NOT hand the result over. Check " +
      "the card, enter its last 4 digits again and record again.",
    otp_mismatch: "The one-time code is wrong: do NOT hand the result over. Ask the citizen for the code " +
      "again and record again.",
    id_required: "Check the receiver's identity before handing the result over: the ID card's last 4 " +
      "digits or the one-time code.",
    note_required: "Say what was wrong.",
    window: "Delivery window",
    window_passed: "passed",
    due_was: "due %(due)s",
    amount_not_stated: "amount not stated",
  },
};

function t(key, params = {}) {
  const text = STRINGS[key] ?? OWN[LANG === "en" ? "en" : "vi"][key] ?? key;
  return text.replace(/%\((\w+)\)s/g, (_, name) => (params[name] ?? "").toString());
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(node.dataset, v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const money = (vnd) => new Intl.NumberFormat(LANG === "en" ? "en-US" : "vi-VN").format(vnd) + " ₫";

function uuid() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

// Days are the service's days (SERVICE_TIMEZONE, Asia/Ho_Chi_Minh), never the phone's or UTC's: a
// courier whose phone is set to another zone, or who works between 00:00 and 07:00, still sees
// "today" as the post office does.
const ZONE = document.querySelector('meta[name="service-timezone"]')?.content || "Asia/Ho_Chi_Minh";
const ZONE_PARTS = new Intl.DateTimeFormat("en-US", {
  timeZone: ZONE, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit",
  hour: "2-digit", minute: "2-digit", second: "2-digit",
});

/** Wall-clock fields of a moment in the service's zone, and the zone's offset then (minutes). */
function zoned(date) {
  const p = Object.fromEntries(ZONE_PARTS.formatToParts(date).map((x) => [x.type, x.value]));
  const [y, mo, d, h, mi, sec] = [p.year, p.month, p.day, p.hour, p.minute, p.second].map(Number);
  const wall = Date.UTC(y, mo - 1, d, h % 24, mi, sec);
  return { y, mo, d, h: h % 24, mi, sec, offset: Math.round((wall - Math.floor(date.getTime() / 1000) * 1000) / 60000) };
}

/** A moment as ISO 8601 in the service's zone, e.g. 2026-11-21T09:15:02+07:00 (the phone's clock,
 * the service's offset). */
function localIso(date = new Date()) {
  const z = zoned(date);
  const pad = (n) => String(Math.abs(n)).padStart(2, "0");
  const sign = z.offset >= 0 ? "+" : "-";
  return `${z.y}-${pad(z.mo)}-${pad(z.d)}T${pad(z.h)}:${pad(z.mi)}:${pad(z.sec)}` +
    `${sign}${pad(Math.trunc(z.offset / 60))}:${pad(z.offset % 60)}`;
}

/** The service's date (YYYY-MM-DD) of a moment (a Date or an ISO text with an offset). */
const localDay = (when = new Date()) => localIso(when instanceof Date ? when : new Date(when)).slice(0, 10);

/** The service's next working day after today (Monday to Friday), as the server's default next
 * attempt (courier.services.next_working_day). */
export function nextWorkingDay(today = localDay()) {
  const [y, m, d] = today.split("-").map(Number);
  const day = new Date(Date.UTC(y, m - 1, d + 1));
  while (day.getUTCDay() === 0 || day.getUTCDay() === 6) day.setUTCDate(day.getUTCDate() + 1);
  return day.toISOString().slice(0, 10);
}

/** The day after a day (YYYY-MM-DD). */
function nextDay(day) {
  const [y, m, d] = day.split("-").map(Number);
  return new Date(Date.UTC(y, m - 1, d + 1)).toISOString().slice(0, 10);
}

/** A day (YYYY-MM-DD) as the post office writes it: dd/mm/yyyy. */
const showDay = (day) => (/^\d{4}-\d{2}-\d{2}$/.test(day || "") ? day.split("-").reverse().join("/") : "");

// The citizen's delivery window (docs/courier-api.md, `delivery_window`): times of day in the service's
// zone, so "now" is read on the service's clock too, never in the phone's zone.

/** "HH:MM" as minutes after midnight, or null. */
function minutesOf(text) {
  const m = /^(\d{1,2}):(\d{2})$/.exec(text || "");
  return m ? Number(m[1]) * 60 + Number(m[2]) : null;
}

/** The order's delivery window, {from, to, text: "08:00–12:00"}, or null when none was chosen. */
function windowOf(order) {
  const w = order.delivery_window;
  if (!w || minutesOf(w.from) === null || minutesOf(w.to) === null) return null;
  return { from: w.from, to: w.to, text: `${w.from}–${w.to}` };
}

/** Whether the window ending at `to` (HH:MM) on `day` (the run's date, YYYY-MM-DD; today if unknown) is
 * over on the service's clock: a past run's windows are, a later run's are not. */
function windowPassed(to, day = state.run?.date, now = new Date()) {
  const today = localDay(now);
  if (day && day !== today) return day < today;
  const z = zoned(now);
  return z.h * 60 + z.mi >= minutesOf(to);
}

/** A moment shown to people in the service's zone. */
const showTime = (when) => new Date(when).toLocaleTimeString(LANG, { timeZone: ZONE, hour: "2-digit", minute: "2-digit" });
const showMoment = (when) => new Date(when).toLocaleString(LANG, { timeZone: ZONE });

/** An item id from what was scanned or typed: spaces and dashes dropped, upper case; a tracking link
 * (…/t/RH000000014VN) gives its item id. */
export function normaliseCode(raw) {
  const text = String(raw || "").trim();
  const last = text.includes("/") ? text.split(/[?#]/)[0].replace(/\/+$/, "").split("/").pop() : text;
  const code = last.replace(/[\s\-–]/g, "").toUpperCase();
  return /^[A-Z]{2}\d{9}[A-Z]{2}$/.test(code) ? code : null;
}

// --- IndexedDB: outbox (events), files (blobs), kv (the saved run) ------------------------------------

const DB_NAME = "courier-app";
let dbPromise = null;

function openDb() {
  dbPromise ??= new Promise((resolve, reject) => {
    const req = indexedDB.open(DB_NAME, 1);
    req.onupgradeneeded = () => {
      const db = req.result;
      db.createObjectStore("outbox", { keyPath: "event_id" });
      db.createObjectStore("files", { keyPath: "id" });
      db.createObjectStore("kv", { keyPath: "key" });
    };
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
  return dbPromise;
}

async function tx(stores, mode, work) {
  const db = await openDb();
  return new Promise((resolve, reject) => {
    const transaction = db.transaction(stores, mode);
    let result;
    Promise.resolve(work(transaction)).then((r) => { result = r; }, reject);
    transaction.oncomplete = () => resolve(result);
    transaction.onerror = () => reject(transaction.error);
    transaction.onabort = () => reject(transaction.error);
  });
}

const reqP = (req) => new Promise((resolve, reject) => {
  req.onsuccess = () => resolve(req.result);
  req.onerror = () => reject(req.error);
});

const getAll = (store) => tx([store], "readonly", (x) => reqP(x.objectStore(store).getAll()));
const getKey = (store, key) => tx([store], "readonly", (x) => reqP(x.objectStore(store).get(key)));
const putRow = (store, row) => tx([store], "readwrite", (x) => { x.objectStore(store).put(row); });
const deleteRow = (store, key) => tx([store], "readwrite", (x) => { x.objectStore(store).delete(key); });

// --- state ----------------------------------------------------------------------------------------

const state = {
  run: null, // the run JSON, as last received from the server (or saved)
  savedAt: null,
  outbox: [], // rows of the outbox store recorded by the user logged in
  files: [],
  others: [], // rows another user recorded on this phone: kept for them, never sent or shown here
  extra: new Map(), // orders opened by a scan that are not on today's run
  lastSent: null,
  current: null, // item id in the sheet
  authLost: false,
};

function allOrders() {
  if (!state.run) return [...state.extra.values()];
  const orders = state.run.stops.flatMap((s) => s.orders).concat(state.run.unsequenced || []);
  return orders.concat([...state.extra.values()].filter((o) => !orders.some((x) => x.item_id === o.item_id)));
}

const findOrder = (itemId) => allOrders().find((o) => o.item_id === itemId) || null;
const onRun = (itemId) => !!state.run && allOrdersOfRun().some((o) => o.item_id === itemId);
const allOrdersOfRun = () => state.run.stops.flatMap((s) => s.orders).concat(state.run.unsequenced || []);
/** A row of the user logged in (rows from before rows carried their user count as theirs). */
const mine = (row) => !row.user || row.user === ME;
const waits = (row) => row.state === "pending" || row.state === "locating";
const pendingOf = (itemId) => state.outbox.filter((r) => r.item_id === itemId && waits(r));
const parkedOf = (itemId) => state.outbox.filter((r) => r.item_id === itemId && r.state === "parked");

/** Which leg the order is on: "result" (carrying a result to the citizen) or "dossier" (collecting one). */
const legOf = (order) => order.leg ?? (order.direction === "result_to_citizen" ? "result" : "dossier");

/** What the courier can record next on an order in this status (courier.services.actions_for). */
function nextActions(status, leg) {
  if (leg === "result") {
    if (status === "assigned" || status === "delivered_to_agency") return ["pickup_confirmed"];
    if (["handed_to_courier", "out_for_delivery", "failed_attempt"].includes(status)) return ["delivered", "failed_attempt"];
    return [];
  }
  if (status === "assigned") return ["pickup_confirmed", "dossier_picked_up", "failed_attempt"];
  if (status === "pickup_scheduled" || status === "failed_attempt") return ["dossier_picked_up", "failed_attempt"];
  return [];
}

/** The status an action leads to (the server's status machine, courier.services._steps). */
function target(action, leg) {
  if (action === "pickup_confirmed") return leg === "result" ? "handed_to_courier" : "pickup_scheduled";
  return { delivered: "delivered", failed_attempt: "failed_attempt", dossier_picked_up: "picked_up" }[action] ?? null;
}

function byDeviceTime(a, b) {
  return (Date.parse(a.event.device_time) - Date.parse(b.event.device_time)) || a.created - b.created;
}

/** The order as it will be once what waits in the outbox is applied, in device-time order, as the
 * server will apply it: status, failed attempts, the last record and whether it can be corrected.
 * So a pickup recorded offline is followed, still offline, by a delivery or a failed attempt. */
function predict(order) {
  const leg = legOf(order);
  const limit = state.run?.settings?.max_failed_attempts ?? Infinity;
  let status = order.status;
  let attempts = order.failed_attempts || 0;
  let last = order.last_event || null;
  let correctable = (order.actions || []).includes("correction") &&
    !!(last?.correctable_until && new Date(last.correctable_until) > new Date());
  let pending = false;
  // what the delivery or the pickup recorded as collected: the server's, or the amount entered on the phone
  let collected = order.collected_vnd ?? null;
  const steps = new Map(); // event id -> {from, to} of the records on the phone
  for (const row of pendingOf(order.item_id).sort(byDeviceTime)) {
    const { action } = row.event;
    if (action === "correction") {
      const corrected = steps.get(row.event.corrects) ??
        (last && last.event_id === row.event.corrects ? { from: last.status_from, to: last.status } : null);
      if (!correctable || !corrected?.from || !last || last.event_id !== row.event.corrects) continue; // refused
      if (corrected.to === "failed_attempt") attempts = Math.max(0, attempts - 1);
      if (CASH_DONE.has(corrected.to)) collected = null;
      last = { event_id: row.event_id, status: corrected.from, status_from: status, device_time: row.event.device_time };
      status = corrected.from;
      correctable = false;
      pending = true;
      continue;
    }
    if (!nextActions(status, leg).includes(action)) continue; // the server will refuse it: no change
    // a failed attempt counts once per day: another before the next attempt's day is refused
    if (action === "failed_attempt" && status === "failed_attempt" && last?.status === "failed_attempt" &&
        last.device_time && localDay(row.event.device_time) <= localDay(last.device_time)) continue;
    let to = target(action, leg);
    if (action === "failed_attempt") {
      attempts += 1;
      if (attempts >= limit) to = leg === "result" ? "returned_to_agency" : "cancelled";
    }
    steps.set(row.event_id, { from: status, to });
    if (action === "delivered") collected = row.event.amount_collected_vnd ?? null;
    if (action === "dossier_picked_up") collected = row.event.fees_collected_vnd ?? null;
    last = { event_id: row.event_id, status: to, status_from: status, device_time: row.event.device_time };
    correctable = to === target(action, leg); // not after the system's return
    status = to;
    pending = true;
  }
  return { status, attempts, last, correctable, pending, collected };
}

const effectiveStatus = (order) => predict(order).status;

function isDone(order) {
  const { status, last, pending } = predict(order);
  if (FINISHED.has(status)) return true;
  if (status !== "failed_attempt") return false;
  // a failed attempt counts as done for today when it was made today (the service's day)
  if (pending) return true;
  return !!(last?.device_time && localDay(last.device_time) === localDay());
}

function actionsOf(order) {
  const p = predict(order);
  if (!p.pending) {
    const actions = (order.actions || []).filter((a) => a !== "correction");
    return p.correctable ? actions.concat("correction") : actions;
  }
  let actions = nextActions(p.status, legOf(order));
  // a failed attempt recorded today: no other one today (the server refuses it), a delivery still
  if (p.status === "failed_attempt" && p.last?.status === "failed_attempt" && p.last.device_time &&
      localDay(p.last.device_time) === localDay()) actions = actions.filter((a) => a !== "failed_attempt");
  return p.correctable ? actions.concat("correction") : actions;
}

const lastEventOf = (order) => predict(order).last;

/** After the server applied an event: the order as it now is, until the run is read again. */
function applied(order, row, status, now) {
  const from = order.status;
  order.status = status;
  if (now && row.event.action === "failed_attempt") order.failed_attempts = (order.failed_attempts || 0) + 1;
  if (!CASH_DONE.has(status)) order.collected_vnd = null;
  else if (row.event.action === "delivered") order.collected_vnd = row.event.amount_collected_vnd ?? null;
  else if (row.event.action === "dossier_picked_up") order.collected_vnd = row.event.fees_collected_vnd ?? null;
  const own = row.event.action !== "correction" && status === target(row.event.action, legOf(order));
  const windowMin = state.run?.settings?.correction_window_min ?? 0;
  order.last_event = { event_id: row.event_id, status, status_from: from, device_time: row.event.device_time,
    correctable_until: own ? new Date(Date.now() + windowMin * 60000).toISOString() : null };
  order.actions = nextActions(status, legOf(order)).concat(own && windowMin ? ["correction"] : []);
}

// --- rendering ------------------------------------------------------------------------------------

function render() {
  renderHeader();
  renderRun();
  renderParked();
  renderOutbox();
  renderOthers();
  if (state.current && $("#sheet").open) renderSheetBody(state.current);
}

function renderHeader() {
  const run = state.run;
  if (!run) return;
  $("#route-code").textContent = run.route.code;
  $("#route-name").textContent = run.route.name;
  const orders = allOrdersOfRun();
  const done = orders.filter(isDone).length;
  const total = orders.length;
  $("#progress").max = total || 1;
  $("#progress").value = done;
  $("#progress-text").textContent = `${done} ${t("done")} · ${total - done} ${t("left")}`;
  $("#progress-text").dataset.done = done;
  $("#progress-text").dataset.total = total;
}

function statusBadge(status) {
  return el("span", { class: `badge badge-${TONE[status] || "new"}`, dataset: { status } }, t(`status_${status}`));
}

/** The order's delivery window as a small badge ("08:00–12:00", "… đã qua" once it is over today and the
 * order is still to do); null when it has none. `caption`: say what the time is, for screen readers,
 * where no label beside it does. */
function windowBadge(order, { caption = false } = {}) {
  const w = windowOf(order);
  if (!w) return null;
  const done = isDone(order);
  const passed = !done && windowPassed(w.to);
  return el("span", { class: "c-window", dataset: { from: w.from, to: w.to, done: String(done), passed: String(passed) } },
    caption ? el("span", { class: "visually-hidden" }, `${t("window")} `) : null,
    el("span", { class: "c-window-time" }, w.text),
    el("span", { class: "c-window-passed", hidden: !passed }, t("window_passed")));
}

/** Windows that ended since the page was drawn are marked, in place (offline nothing else redraws it). */
function markPassedWindows() {
  for (const badge of document.querySelectorAll('.c-window[data-done="false"]')) {
    const passed = windowPassed(badge.dataset.to);
    badge.dataset.passed = String(passed);
    badge.querySelector(".c-window-passed").hidden = !passed;
  }
}

/** The order's money: before delivery or the dossier's pickup what is due ("Cần thu"); once delivered or
 * picked up what the courier recorded collecting ("Đã thu", the amount entered on the phone while it
 * waits to be sent), with what was due when that differs or no amount was stated. Null: nothing to
 * collect and nothing collected. */
function cashOf(order) {
  const { status, collected } = predict(order);
  const due = order.to_collect_vnd || 0;
  if (!CASH_DONE.has(status)) return due ? { label: t("to_collect"), amount: money(due), due: null } : null;
  if (collected === null) return due ? { label: t("collected"), amount: t("amount_not_stated"), due: money(due) } : null;
  if (collected === due) return due ? { label: t("collected"), amount: money(due), due: null } : null;
  return { label: t("collected"), amount: money(collected), due: money(due) };
}

function orderBlock(order) {
  const status = effectiveStatus(order);
  const addr = [order.address.detail, order.address.commune, order.address.province].filter(Boolean).join(", ");
  const links = el("p", { class: "c-links" });
  if (order.recipient.phone) {
    links.append(el("a", { class: "btn", href: `tel:${order.recipient.phone}` }, "☎ ", order.recipient.phone));
  }
  if (order.latitude != null && order.longitude != null) {
    const lat = Number(order.latitude).toFixed(6);
    const lon = Number(order.longitude).toFixed(6);
    const label = encodeURIComponent(order.recipient.name);
    links.append(el("a", { class: "btn", href: `geo:${lat},${lon}?q=${lat},${lon}(${label})` }, t("map")));
  }
  const cash = cashOf(order);
  const pending = pendingOf(order.item_id).length;
  const parked = parkedOf(order.item_id).length;
  return el("div", { class: "c-order", dataset: { item: order.item_id, status } },
    el("button", { type: "button", class: "c-open", onclick: () => openSheet(order.item_id) },
      el("p", { class: "c-name" }, order.recipient.name, windowBadge(order, { caption: true })),
      el("p", { class: "c-address" }, addr)),
    order.authorised ? el("p", { class: "muted" }, `${t("authorised")}: ${order.authorised.name}`) : null,
    links,
    el("p", { class: "c-collect" }, cash ? [`${cash.label}: `, el("strong", {}, cash.amount),
      cash.due ? el("span", { class: "c-due" }, ` (${t("due_was", { due: cash.due })})`) : null]
      : el("span", { class: "muted" }, t("nothing_to_collect"))),
    el("p", { class: "c-meta" }, statusBadge(status),
      el("span", { class: `c-leg c-leg-${legOf(order)}`, dataset: { leg: legOf(order) } }, t(`leg_${legOf(order)}`)),
      el("span", { class: "item-id" }, order.item_id),
      pending ? el("span", { class: "c-flag c-flag-pending" }, t("pending_here")) : null,
      parked ? el("span", { class: "c-flag c-flag-rejected" }, t("rejected")) : null,
      order.position_estimated ? el("span", { class: "c-mark" }, "≈ " + t("estimated")) : null,
      order.latitude == null ? el("span", { class: "c-mark" }, t("no_position")) : null),
  );
}

// The stop's arrival window from the server (recomputed from the visits synced so far).
function etaLine(stop) {
  if (!stop.eta) return null;
  const text = stop.eta.visited ? t("visited", { time: stop.eta.estimate.slice(11, 16) })
    : t("eta", { window: stop.eta.label });
  return el("p", { class: "c-eta muted", dataset: { from: stop.eta.from, to: stop.eta.to } }, text);
}

function renderRun() {
  const list = $("#stops");
  const unseq = $("#unsequenced-list");
  list.replaceChildren();
  unseq.replaceChildren();
  $("#finished-list").replaceChildren();
  if (!state.run) return;
  for (const stop of state.run.stops) {
    const done = stop.orders.every(isDone);
    list.append(el("li", { class: "stop", dataset: { done: String(done), stop: stop.number } },
      el("div", { class: "stop-no", "aria-label": t("stop", { number: stop.number }) }, stop.number),
      el("div", { class: "stop-body" }, etaLine(stop), stop.orders.map(orderBlock))));
  }
  // orders off the sequence: those still to visit, then those finished today (they stay, as done)
  const finished = $("#finished-list");
  finished.replaceChildren();
  for (const order of state.run.unsequenced || []) {
    (isDone(order) ? finished : unseq).append(el("li", {}, orderBlock(order)));
  }
  $("#unsequenced").hidden = !unseq.children.length;
  $("#finished").hidden = !finished.children.length;
  $("#finished-title").textContent = t("done_today");
  if (!allOrdersOfRun().length) note(t("no_orders"));
}

function note(text, tone = "") {
  const p = $("#run-note");
  p.textContent = text || "";
  p.dataset.tone = tone;
  p.hidden = !text;
}

function renderParked() {
  const parked = state.outbox.filter((r) => r.state === "parked");
  const badFiles = state.files.filter((f) => f.state === "parked");
  const list = $("#parked-list");
  list.replaceChildren();
  for (const row of parked) {
    list.append(el("li", { dataset: { event: row.event_id } },
      el("strong", { class: "item-id" }, row.item_id),
      el("span", {}, actionLabel(row.event.action)),
      refusalFlag(row.error),
      el("button", { type: "button", class: "btn c-tap", onclick: () => dismiss(row.event_id) }, t("dismiss"))));
  }
  for (const file of badFiles) {
    list.append(el("li", {}, el("strong", { class: "item-id" }, file.item_id), el("span", {}, t(`file_${file.kind}`)),
      refusalFlag({ message: file.error, http: file.http, file: true }),
      el("button", { type: "button", class: "btn c-tap", onclick: () => dismissFile(file.id) }, t("dismiss"))));
  }
  $("#parked").hidden = !(parked.length || badFiles.length);
}

// Why the server refused a record, by its stable name (error.reason of a sync result,
// docs/courier-api.md), and the words the app says it with in the page's language.
const REFUSALS = {
  id_mismatch: "id_mismatch", otp_mismatch: "otp_mismatch", id_check_required: "id_required",
  note_required: "note_required", status_not_allowed: "error_transition", not_your_route: "error_not_your_route",
  clock_skew: "error_clock_skew", window_closed: "error_window_closed", malformed: "error_invalid",
  event_id_reused: "error_event_id_reused", before_order: "error_before_order",
  next_attempt_too_far: "error_next_attempt_too_far", nothing_to_correct: "error_nothing_to_correct",
  correction_of_correction: "error_correction_of_correction", already_corrected: "error_already_corrected",
  not_due_yet: "error_not_due_yet", amount_mismatch: "error_amount_mismatch",
};
// A request the server refused whole, by its HTTP status: a batch of records, or a photo or signature.
const HTTP_REFUSALS = { 422: "error_invalid" };
const FILE_REFUSALS = { 404: "error_not_your_route", 413: "error_too_large", 422: "error_not_an_image" };

/** What a refusal means for the courier, in the page's language: by the refusal's stable name; for a
 * record refused by an earlier version of the server (still parked on the phone), by its words. */
function refusalKey(error) {
  if (REFUSALS[error?.reason]) return REFUSALS[error.reason];
  const http = error?.http ?? (/^\d{3}$/.test(error?.code || "") ? Number(error.code) : null);
  if (http) return (error.file ? FILE_REFUSALS : HTTP_REFUSALS)[http] ?? null;
  const detail = `${error?.message || ""} ${JSON.stringify(error?.fields || {})}`;
  if (error?.fields?.id_check || /identity|ID card|one-time code/i.test(detail)) {
    if (/one-time code (is wrong|does not match)/i.test(detail)) return "otp_mismatch";
    if (/ID card does not match|last 4 digits do not match/i.test(detail)) return "id_mismatch";
    if (/Check the receiver's identity|Required/i.test(detail)) return "id_required";
  }
  if (error?.code === "invalid" && error?.fields?.note) return "note_required";
  return error?.code && STRINGS[`error_${error.code}`] ? `error_${error.code}` : null;
}

/** Why a record was refused, in the page's language only. The server's own words are English: the
 * English page adds them where the app's words are general; the Vietnamese page never shows them. */
function refusal(error) {
  const key = refusalKey(error);
  const http = error?.http ?? (/^\d{3}$/.test(error?.code || "") ? error.code : null);
  let known = key ? t(key) : http ? `${t("error")} ${http}` : t("rejected");
  if (key === "error_transition" && error?.status_now) {
    known = t("error_transition_now", { status: t(`status_${error.status_now}`) });
  }
  if (key === "error_not_due_yet") known = t(key, { date: showDay(error.next_attempt_date) });
  const detail = error?.message || "";
  const general = !key || key === "error_invalid";
  return LANG === "en" && general && detail && detail !== known ? `${known} (${detail})` : known;
}

const refusalFlag = (error) => el("span", { class: "c-flag c-flag-rejected",
  dataset: error?.reason ? { reason: error.reason } : null,
  title: LANG === "en" ? error?.message || null : null }, refusal(error));

/** A record refused just now: said at the top of the page at once, and its order opened again when
 * nothing else is open (the courier is likely still with the citizen). */
function refusedNow(row, error) {
  flash(t("refused_now", { item_id: row.item_id, why: refusal(error) }), "bad");
  if (Date.now() - row.created < 10 * 60000 && !$("#sheet").open && findOrder(row.item_id)) {
    setTimeout(() => { if (!$("#sheet").open) openSheet(row.item_id); }, 0);
  }
}

function actionLabel(action) {
  const button = document.querySelector(`#sheet-actions [data-action="${action}"]`);
  return button ? button.textContent : action;
}

function renderOutbox() {
  const badge = $("#outbox-badge");
  const pending = state.outbox.filter(waits).length;
  const parked = state.outbox.filter((r) => r.state === "parked").length;
  badge.dataset.pending = pending;
  badge.dataset.parked = parked;
  badge.dataset.state = parked ? "parked" : pending ? "pending" : "sent";
  const parts = [];
  if (pending) parts.push(t("outbox_pending", { num: pending }));
  if (parked) parts.push(t("outbox_parked", { num: parked }));
  badge.textContent = parts.length ? parts.join(" · ") : t("outbox_sent");
}

/** Records another courier left on this phone: said plainly, kept for them. */
function renderOthers() {
  const box = $("#others");
  if (!box) return;
  const byUser = new Map();
  for (const row of state.others) {
    const key = row.username || row.user;
    byUser.set(key, (byUser.get(key) || 0) + 1);
  }
  box.replaceChildren(...[...byUser].map(([user, num]) => el("p", {}, t("other_user", { num, user }))));
  box.hidden = !byUser.size;
}

async function dismiss(eventId) {
  await deleteRow("outbox", eventId);
  await reload();
}

async function dismissFile(id) {
  await deleteRow("files", id);
  await reload();
}

async function reload() {
  const rows = await getAll("outbox");
  state.outbox = rows.filter(mine);
  state.others = rows.filter((r) => !mine(r));
  state.files = (await getAll("files")).filter(mine).map(({ blob, ...rest }) => rest);
  render();
}

// --- the order sheet ------------------------------------------------------------------------------

function openSheet(itemId) {
  state.current = itemId;
  state.sheetEvent = uuid(); // the pickup confirmed from this sheet: one record however often it is tapped
  startPosition(); // a fix may arrive while the form is filled in
  $("#sheet-title").textContent = itemId;
  sheetMessage("");
  for (const form of document.querySelectorAll("#sheet form")) form.hidden = true;
  renderSheetBody(itemId);
  const sheet = $("#sheet");
  if (!sheet.open) sheet.showModal();
}

function renderSheetBody(itemId) {
  const order = findOrder(itemId);
  if (!order) return;
  const status = effectiveStatus(order);
  const kv = el("dl", { class: "c-kv" });
  const row = (k, ...v) => kv.append(el("dt", {}, k), el("dd", {}, ...v));
  row("", statusBadge(status));
  row("☺", el("span", {}, order.recipient.name), callButton(order.recipient.phone));
  if (order.authorised) row(t("authorised"), el("span", {}, order.authorised.name), callButton(order.authorised.phone));
  const timeOfDay = windowBadge(order);
  if (timeOfDay) row(t("window"), timeOfDay);
  row("⌂", [order.address.detail, order.address.commune, order.address.province].filter(Boolean).join(", "));
  if (order.procedure_name) row("§", order.procedure_name, order.dossier_code ? ` (${order.dossier_code})` : "");
  const cash = cashOf(order);
  if (cash) {
    const parts = [];
    if (order.collect_vnd) parts.push(`${t("fees_for_agency")} ${money(order.collect_vnd)}`);
    if (order.to_collect_vnd - (order.collect_vnd || 0) > 0) {
      parts.push(`${t("postage")} ${money(order.to_collect_vnd - (order.collect_vnd || 0))}`);
    }
    // once delivered, what the courier recorded collecting; what was due beside it when that differs
    const due = cash.due ? t("due_was", { due: cash.due }) + (parts.length ? `: ${parts.join(", ")}` : "") : parts.join(", ");
    row(cash.label, el("strong", {}, cash.amount), due ? el("span", { class: "c-due" }, ` (${due})`) : "");
  }
  const attempts = predict(order).attempts;
  if (attempts) row("", t("failed_attempts", { num: attempts }));
  const last = correctableRecord(order);
  if (last) {
    row(t("last_event"), el("span", { class: "c-last-what", dataset: { status: last.status } }, describeRecord(last)),
      last.correctable_until ? el("span", { class: "c-last-until" }, t("correct_until", { time: showTime(last.correctable_until) }))
        : null);
  }
  for (const p of parkedOf(itemId)) row(t("rejected"), refusalFlag(p.error));
  if (pendingOf(itemId).length) row("", el("span", { class: "c-flag c-flag-pending" }, t("pending_here")));
  $("#sheet-body").replaceChildren(kv);
  const actions = actionsOf(order);
  for (const button of document.querySelectorAll("#sheet-actions [data-action]")) {
    button.hidden = !actions.includes(button.dataset.action);
  }
}

/** A button that calls the number (a whole touch target, not a link in a line of text); null without one. */
function callButton(phone) {
  return phone ? el("a", { class: "btn c-tap c-call", href: `tel:${phone}` }, el("span", { "aria-hidden": "true" }, "☎"),
    phone) : null;
}

/** The order's last record while it can still be corrected (sent and in its window, or still on the
 * phone), else null. */
function correctableRecord(order) {
  const { last, correctable } = predict(order);
  return correctable && last?.status ? last : null;
}

/** What a record was, for people: its status in words and when, on the service's clock ("Đã phát lúc
 * 09:15"; with the date when it was not today). */
function describeRecord(last) {
  const status = t(`status_${last.status}`);
  if (!last.device_time) return status;
  const when = localDay(last.device_time) === localDay() ? showTime(last.device_time)
    : new Date(last.device_time).toLocaleString(LANG, { timeZone: ZONE, day: "2-digit", month: "2-digit",
      hour: "2-digit", minute: "2-digit" });
  return t("record_at", { status, time: when });
}

function sheetMessage(text, tone = "bad") {
  const p = $("#sheet-msg");
  p.textContent = text;
  p.dataset.tone = tone;
  p.hidden = !text;
  // The message is at the top of the sheet, the button that caused it at the bottom of a long form.
  if (text) p.scrollIntoView({ block: "nearest", behavior: "smooth" });
}

function closeSheet() {
  $("#sheet").close();
  state.current = null;
}

function showForm(action) {
  const order = findOrder(state.current);
  for (const form of document.querySelectorAll("#sheet form")) form.hidden = form.dataset.form !== action;
  sheetMessage("");
  if (action === "pickup_confirmed") {
    const button = $('#sheet-actions [data-action="pickup_confirmed"]');
    if (button.disabled) return;
    button.disabled = true;
    record(order, "pickup_confirmed", {}, [], state.sheetEvent).then(() => closeSheet())
      .finally(() => { button.disabled = false; });
    return;
  }
  const form = $(`#form-${action}`);
  form.reset();
  form.dataset.eventId = uuid(); // a second submit of this opened form is the same record
  if (action === "delivered") prepareDelivered(order, form);
  if (action === "failed_attempt") prepareFailed(form);
  if (action === "dossier_picked_up") form.elements.fees.value = order.to_collect_vnd ?? 0; // what is due
  if (action === "correction") {
    const last = lastEventOf(order);
    $("#c-what").textContent = `${t("last_event")}: ${last ? describeRecord(last) : ""}`;
  }
  form.querySelector("input:not([type=hidden]):not([type=radio]), select, textarea")?.focus();
  form.scrollIntoView({ block: "start" });
}

function prepareDelivered(order, form) {
  clearSignature();
  photo = null;
  $("#d-photo-preview").hidden = true;
  const check = order.id_check || "none";
  $("#d-idkind").hidden = check === "none";
  if (check !== "none") form.elements.id_kind.value = check;
  toggleIdCheck(form);
  form.elements.amount.value = order.to_collect_vnd ?? 0;
  toggleWhy(form, order);
  if (order.authorised) form.elements.receiver_name.value = order.authorised.name;
  toggleReceiver(form);
}

/** The amount collected differs from what is due: the form asks why (the server refuses it without). */
function toggleWhy(form, order = findOrder(state.current)) {
  const differs = number(form.elements.amount.value) !== (order?.to_collect_vnd ?? 0);
  $("#d-why").hidden = !differs;
  return differs;
}

function toggleIdCheck(form) {
  const check = $("#d-idkind").hidden ? "none" : form.elements.id_kind.value;
  for (const field of form.querySelectorAll("[data-idcheck]")) field.hidden = field.dataset.idcheck !== check;
  offlineIdWarning();
}

/** Offline, the ID card's last 4 digits cannot be checked (the phone holds nothing to check them
 * against): they are checked at sync, after the result was handed over. The form says so, before
 * saving, while there is no network. */
function offlineIdWarning() {
  $("#d-id4-offline").hidden = navigator.onLine;
}

function toggleReceiver(form) {
  const authorised = form.elements.receiver_kind.value === "authorised";
  for (const field of form.querySelectorAll('[data-when="authorised"]')) field.hidden = !authorised;
}

function prepareFailed(form) {
  const select = form.elements.reason;
  const reasons = state.run?.failure_reasons || [];
  select.replaceChildren(el("option", { value: "" }, "—"),
    ...reasons.map((r) => el("option", { value: r.code }, LANG === "en" ? (r.label_en || r.label) : r.label)));
  form.elements.next_attempt_date.value = nextWorkingDay();
  // not today: an attempt counts once per day (the server plans the next one for a later day)
  form.elements.next_attempt_date.min = nextDay(localDay());
}

// --- signature and photo --------------------------------------------------------------------------

let signed = false;
let photo = null; // {blob, type}

function setupSignature() {
  const canvas = $("#d-sign");
  const ctx = canvas.getContext("2d");
  let drawing = false;
  const point = (e) => {
    const r = canvas.getBoundingClientRect();
    return [(e.clientX - r.left) * (canvas.width / r.width), (e.clientY - r.top) * (canvas.height / r.height)];
  };
  canvas.addEventListener("pointerdown", (e) => {
    drawing = true;
    canvas.setPointerCapture?.(e.pointerId);
    ctx.lineWidth = 4;
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    ctx.strokeStyle = "#1c2430";
    ctx.beginPath();
    ctx.moveTo(...point(e));
    e.preventDefault();
  });
  canvas.addEventListener("pointermove", (e) => {
    if (!drawing) return;
    ctx.lineTo(...point(e));
    ctx.stroke();
    signed = true;
    e.preventDefault();
  });
  const stop = () => { drawing = false; };
  canvas.addEventListener("pointerup", stop);
  canvas.addEventListener("pointercancel", stop);
  $("#sign-clear").addEventListener("click", clearSignature);
}

function clearSignature() {
  const canvas = $("#d-sign");
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  signed = false;
}

const canvasBlob = (canvas, type, quality) => new Promise((resolve) => canvas.toBlob(resolve, type, quality));

/** A photo shrunk to at most 1280 px on its long side, as JPEG, under the server's size limit. */
async function shrinkPhoto(file) {
  const maxBytes = state.run?.settings?.max_file_bytes || 2097152;
  let bitmap;
  try {
    bitmap = await createImageBitmap(file);
  } catch {
    bitmap = await new Promise((resolve, reject) => {
      const img = new Image();
      img.onload = () => resolve(img);
      img.onerror = reject;
      img.src = URL.createObjectURL(file);
    });
  }
  const w = bitmap.width;
  const h = bitmap.height;
  const scale = Math.min(1, 1280 / Math.max(w, h));
  const canvas = document.createElement("canvas");
  canvas.width = Math.round(w * scale);
  canvas.height = Math.round(h * scale);
  canvas.getContext("2d").drawImage(bitmap, 0, 0, canvas.width, canvas.height);
  for (const quality of [0.82, 0.7, 0.55, 0.4]) {
    const blob = await canvasBlob(canvas, "image/jpeg", quality);
    if (blob && blob.size <= maxBytes) return blob;
  }
  return canvasBlob(canvas, "image/jpeg", 0.3);
}

// --- position -------------------------------------------------------------------------------------

let lastFix = null;
let fixWaiters = [];

function startPosition() {
  if (!("geolocation" in navigator)) return;
  navigator.geolocation.getCurrentPosition((pos) => {
    lastFix = { at: Date.now(), latitude: pos.coords.latitude, longitude: pos.coords.longitude,
      accuracy_m: Math.round(pos.coords.accuracy * 10) / 10 };
    fixWaiters.forEach((w) => w(lastFix));
    fixWaiters = [];
  }, () => {}, { enableHighAccuracy: true, timeout: 5000, maximumAge: 60000 });
}

/** The freshest position, waiting at most about 2 s for one; null when none: never blocks a record. */
async function position() {
  if (lastFix && Date.now() - lastFix.at < 60000) return lastFix;
  startPosition();
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(null), GEO_WAIT_MS);
    fixWaiters.push((fix) => { clearTimeout(timer); resolve(fix); });
  });
}

// --- recording ------------------------------------------------------------------------------------

/** Store one action in the outbox (with its files) at once, show it, add the position if one comes
 * within about 2 s, then try to send it. */
const recorded = new Set(); // event ids stored by this page: a second submit of one form is no new record

async function record(order, action, fields, files = [], eventId = uuid()) {
  if (recorded.has(eventId)) return null;
  recorded.add(eventId);
  const event = { event_id: eventId, item_id: order.item_id, action, device_time: localIso(), ...fields };
  const fileRows = files.map((f) => ({ id: uuid(), item_id: order.item_id, event_id: event.event_id, kind: f.kind,
    type: f.blob.type, blob: f.blob, state: "pending", created: Date.now(), user: ME }));
  if (fileRows.length) event.files = fileRows.map((f) => f.id);
  // "locating": stored and shown as waiting, but not sent until the position step below is over (a
  // row left so by a closed app is sent on the next start, without a position).
  const row = { event_id: event.event_id, item_id: order.item_id, event, state: "locating", created: Date.now(),
    user: ME, username: ME_NAME };
  try {
    await tx(["outbox", "files"], "readwrite", (x) => {
      for (const f of fileRows) x.objectStore("files").put(f);
      x.objectStore("outbox").put(row);
    });
  } catch (err) {
    recorded.delete(eventId); // not stored (a full phone): the next submit of the form stores it
    throw err;
  }
  await reload();
  flash(navigator.onLine ? "" : t("saved_offline"), "warn");
  locateAndSend(event.event_id); // not awaited: the sheet closes as soon as the record is stored
  return event;
}

async function locateAndSend(eventId) {
  const fix = await position();
  await tx(["outbox"], "readwrite", async (x) => {
    const store = x.objectStore("outbox");
    const stored = await reqP(store.get(eventId));
    if (!stored || stored.state !== "locating") return;
    if (fix) Object.assign(stored.event, { latitude: fix.latitude, longitude: fix.longitude, accuracy_m: fix.accuracy_m });
    stored.state = "pending";
    store.put(stored);
  });
  await reload();
  requestBackgroundSync();
  drain({ force: true });
}

function flash(text, tone = "") {
  const p = $("#scan-msg");
  p.textContent = text;
  p.dataset.tone = tone;
  p.hidden = !text;
}

function number(value) {
  const n = Number(String(value ?? "").replace(/[^\d]/g, ""));
  return Number.isFinite(n) ? n : 0;
}

/** A form's submit: its button disabled while it is saved (a double tap is one tap), and the record
 * carries the event id given when the form was opened. */
function onSubmit(form, handler) {
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const button = form.querySelector('button[type="submit"]');
    if (button.disabled) return;
    button.disabled = true;
    try {
      await handler(form, form.dataset.eventId || uuid());
    } finally {
      button.disabled = false;
    }
  });
}

async function submitDelivered(form, eventId) {
  const order = findOrder(state.current);
  const kind = form.elements.receiver_kind.value;
  const receiver = { kind, name: kind === "authorised" ? form.elements.receiver_name.value.trim() : order.recipient.name };
  if (kind === "authorised") {
    if (!receiver.name) return sheetMessage(t("need_receiver_name"));
    receiver.relation = form.elements.relation.value.trim();
    if (!receiver.relation) return sheetMessage(t("need_relation"));
  }
  const fields = { receiver, amount_collected_vnd: number(form.elements.amount.value) };
  if (toggleWhy(form, order)) {
    const why = form.elements.note.value.trim();
    if (!why) return sheetMessage(t("need_amount_note", { due: money(order.to_collect_vnd ?? 0) }));
    fields.note = why;
  }
  const check = $("#d-idkind").hidden ? "none" : form.elements.id_kind.value;
  if (check !== "none") {
    const value = (check === "id_last4" ? form.elements.id_last4.value : form.elements.otp.value).trim();
    if (!value) return sheetMessage(t("need_id_check"));
    if (check === "id_last4" && !/^\d{4}$/.test(value)) return sheetMessage(t("need_id_last4"));
    fields.id_check = { kind: check, value };
  }
  const files = [];
  if (signed) files.push({ kind: "signature", blob: await canvasBlob($("#d-sign"), "image/png") });
  if (photo) files.push({ kind: "photo", blob: photo });
  if (!files.length) return sheetMessage(t("need_signature_or_photo"));
  await record(order, "delivered", fields, files, eventId);
  closeSheet();
}

async function submitFailed(form, eventId) {
  const reason = form.elements.reason.value;
  if (!reason) return sheetMessage(t("need_reason"));
  const fields = { reason, note: form.elements.note.value.trim() };
  if (form.elements.next_attempt_date.value) fields.next_attempt_date = form.elements.next_attempt_date.value;
  await record(findOrder(state.current), "failed_attempt", fields, [], eventId);
  closeSheet();
}

async function submitDossier(form, eventId) {
  const documents = form.elements.documents.value.split("\n").map((s) => s.trim()).filter(Boolean);
  if (!documents.length) return sheetMessage(t("need_documents"));
  await record(findOrder(state.current), "dossier_picked_up", {
    documents, sealed: form.elements.sealed.checked, fees_collected_vnd: number(form.elements.fees.value),
  }, [], eventId);
  closeSheet();
}

async function submitCorrection(form, eventId) {
  const order = findOrder(state.current);
  const last = lastEventOf(order);
  if (!last) return;
  const note = form.elements.note.value.trim();
  if (!note) return sheetMessage(t("need_note")); // the server refuses a correction without one
  await record(order, "correction", { corrects: last.event_id, note }, [], eventId);
  closeSheet();
}

// --- sending: the outbox drain --------------------------------------------------------------------

let draining = null;
let backoffUntil = 0;
let failures = 0;
let retryTimer = null;

let again = false; // asked for while a drain ran: what was stored meanwhile goes right after it

/** Send what waits (files first, then events in batches). One drain at a time. */
export function drain({ force = false } = {}) {
  if (draining) {
    again = true;
    return draining;
  }
  if (!force && Date.now() < backoffUntil) return Promise.resolve();
  draining = doDrain().finally(() => {
    draining = null;
    if (again) {
      again = false;
      drain(); // not forced: after a failure, the back-off decides
    }
  });
  return draining;
}

class Retry extends Error {}
class AuthLost extends Error {}

function authLost() {
  state.authLost = true;
  $("#auth-text").textContent = t("session_expired");
  $("#auth-banner").hidden = false;
}

async function send(url, options) {
  let resp;
  try {
    resp = await fetch(url, { credentials: "same-origin", ...options,
      headers: { "X-CSRFToken": CSRF, Accept: "application/json", ...(options.headers || {}) } });
  } catch {
    throw new Retry("network");
  }
  if (resp.status === 401 || resp.status === 403) throw new AuthLost(String(resp.status));
  if (resp.status >= 500 || resp.status === 429 || resp.status === 408) throw new Retry(String(resp.status));
  if (resp.redirected && resp.url.includes("/login")) throw new AuthLost("login");
  return resp;
}

async function message(resp) {
  try {
    const body = await resp.json();
    return body.message || JSON.stringify(body.errors || body);
  } catch {
    return `${t("error")} ${resp.status}`;
  }
}

async function doDrain() {
  if (!navigator.onLine) return;
  let changed = false;
  try {
    // only what the user logged in recorded: another courier's records wait for that courier
    const files = (await getAll("files")).filter((f) => mine(f) && f.state === "pending")
      .sort((a, b) => a.created - b.created);
    for (const file of files) {
      const query = new URLSearchParams({ item_id: file.item_id, event_id: file.event_id, kind: file.kind });
      const resp = await send(`${API}/files/${file.id}?${query}`, {
        method: "PUT", body: file.blob, headers: { "Content-Type": file.type || "application/octet-stream" } });
      if (resp.ok) {
        await deleteRow("files", file.id);
      } else {
        await putRow("files", { ...file, state: "parked", error: await message(resp), http: resp.status });
      }
      changed = true;
    }
    // Events go in device-time order; an order's later records wait behind an earlier one that
    // cannot go yet (still looking for a position, or its files not uploaded), so that a delivery
    // never reaches the server before the pickup it follows.
    const rows = (await getAll("outbox")).filter((r) => mine(r) && waits(r)).sort(byDeviceTime);
    const stuckFiles = new Set((await getAll("files")).filter((f) => f.state === "pending").map((f) => f.event_id));
    const held = new Set();
    const ready = [];
    for (const row of rows) {
      if (held.has(row.item_id) || row.state !== "pending" || stuckFiles.has(row.event_id)) held.add(row.item_id);
      else ready.push(row);
    }
    for (let i = 0; i < ready.length; i += BATCH) {
      const batch = ready.slice(i, i + BATCH);
      const resp = await send(`${API}/sync`, {
        method: "POST", body: JSON.stringify({ events: batch.map((r) => r.event) }),
        headers: { "Content-Type": "application/json" } });
      changed = true;
      if (!resp.ok) { // a 4xx on the batch: keep every event and show why
        const why = await message(resp);
        for (const row of batch) {
          await putRow("outbox", { ...row, state: "parked", error: { code: String(resp.status), http: resp.status, message: why } });
        }
        continue;
      }
      const { results } = await resp.json();
      const byId = new Map(results.map((r) => [r.event_id, r]));
      for (const row of batch) {
        const result = byId.get(row.event_id);
        if (!result) continue; // not answered: stays pending, sent again next time
        if (result.result === "applied" || result.result === "duplicate") {
          await deleteRow("outbox", row.event_id);
          const order = findOrder(row.item_id);
          if (order && result.status) applied(order, row, result.status, result.result === "applied");
        } else {
          // the order's status then: a refusal by the status machine says it in words
          const error = { ...(result.error || { message: t("rejected") }), status_now: result.status || null };
          await putRow("outbox", { ...row, state: "parked", error });
          refusedNow(row, error);
        }
      }
    }
    failures = 0;
    backoffUntil = 0;
    if (state.authLost) {
      state.authLost = false;
      $("#auth-banner").hidden = true;
    }
  } catch (err) {
    if (err instanceof AuthLost) {
      authLost();
    } else if (err instanceof Retry) {
      // 2–4 s after the first failure, doubling up to 5 min; a timer sends again then
      failures += 1;
      const delay = Math.min(300000, 2000 * 2 ** Math.min(failures - 1, 8)) * (1 + Math.random());
      backoffUntil = Date.now() + delay;
      clearTimeout(retryTimer);
      retryTimer = setTimeout(() => drain(), delay + 50);
    } else {
      throw err;
    }
  } finally {
    await reload();
  }
  if (changed) {
    state.lastSent = new Date();
    await loadRun({ quiet: true });
  }
}

function requestBackgroundSync() {
  navigator.serviceWorker?.ready.then((reg) => reg.sync?.register("outbox")).catch(() => {});
}

// --- the run --------------------------------------------------------------------------------------

async function loadRun({ quiet = false } = {}) {
  let resp;
  try {
    resp = await fetch(`${API}/run`, { credentials: "same-origin", headers: { Accept: "application/json" } });
  } catch {
    resp = null;
  }
  let ended = false; // the session is over (the network is up): the log-in banner says so, not "no network"
  if (resp && (resp.status === 401 || resp.status === 403 || (resp.redirected && resp.url.includes("/login")))) {
    authLost();
    resp = null;
    ended = true;
  }
  if (resp && resp.status === 404) {
    // our own words; the server's (in English) after them on the English page only, when they differ
    const detail = LANG === "en" ? await message(resp) : "";
    note(detail && detail !== t("no_route") ? `${t("no_route")} (${detail})` : t("no_route"), "warn");
    return;
  }
  // A run the service worker kept (X-Courier-Cache) may be another user's: the page's own saved run,
  // which carries its user, is used instead.
  const fromCache = !!resp?.headers.get("X-Courier-Cache");
  if (resp && resp.ok && !fromCache &&
      (resp.headers.get("Content-Type") || "").includes("json")) {
    state.run = await resp.json();
    state.savedAt = new Date();
    await putRow("kv", { key: "run", user: ME, run: state.run, saved_at: state.savedAt.toISOString() });
    note("");
    render();
    return;
  }
  const saved = await savedRun();
  if (saved) {
    state.run = saved.run;
    state.savedAt = new Date(saved.saved_at);
    if (ended) note("");
    else if (!quiet || !navigator.onLine || fromCache) note(t("offline_run", { time: showMoment(state.savedAt) }), "warn");
  } else if (!quiet && !ended) {
    note(t("offline_nothing"), "bad");
  }
  render();
}

/** The run saved on the phone for the user logged in; another user's is deleted, never shown. */
async function savedRun() {
  const saved = await getKey("kv", "run");
  if (saved && saved.user !== ME) {
    await deleteRow("kv", "run");
    return null;
  }
  return saved || null;
}

// --- log-out: nothing personal stays on the phone, nothing unsent is lost -----------------------------

/** Forget the saved run and every cached page or answer that carries personal data (the outbox stays:
 * its rows carry their user and wait for them). */
export async function forgetPersonalData() {
  await deleteRow("kv", "run").catch(() => {});
  if (!("caches" in window)) return;
  for (const name of await caches.keys()) {
    if (name === "courier-run") await caches.delete(name);
    else if (name.startsWith("courier-shell-")) await (await caches.open(name)).delete("/courier/");
  }
}

const channel = "BroadcastChannel" in window ? new BroadcastChannel("courier-app") : null;

function wireLogout() {
  const form = $("#logout-form");
  const dialog = $("#logout-dialog");
  let confirmed = false;
  const leave = async () => {
    confirmed = true;
    await forgetPersonalData();
    channel?.postMessage({ type: "logout", user: ME });
    form.submit();
  };
  form.addEventListener("submit", async (e) => {
    if (confirmed) return;
    e.preventDefault();
    const waiting = (await getAll("outbox")).filter((r) => mine(r) && (waits(r))).length;
    if (!waiting) return leave();
    $("#logout-text").textContent = t("logout_waiting", { num: waiting });
    dialog.showModal();
  });
  $("#logout-stay").textContent = t("logout_stay");
  $("#logout-anyway").textContent = t("logout_anyway");
  $("#logout-stay").addEventListener("click", () => { dialog.close(); drain({ force: true }); });
  $("#logout-anyway").addEventListener("click", () => { dialog.close(); leave(); });
  // another tab of the app logged out, or another user logged in: this page is no longer theirs
  channel?.addEventListener("message", (e) => {
    if (e.data?.user !== ME || e.data?.type === "logout") window.location.reload();
  });
  channel?.postMessage({ type: "user", user: ME });
}

// --- scanning -------------------------------------------------------------------------------------

async function handleCode(raw) {
  const itemId = normaliseCode(raw);
  if (!itemId) return flash(t("bad_code"), "bad");
  $("#scan-input").value = itemId;
  const pickup = $("#pickup-mode").checked;
  let order = findOrder(itemId);
  if (!order || !onRun(itemId)) {
    if (!navigator.onLine) return flash(t("not_on_run", { item_id: itemId }), "bad");
    let resp = null;
    try {
      resp = await fetch(`${API}/orders/${encodeURIComponent(itemId)}`, { credentials: "same-origin",
        headers: { Accept: "application/json" } });
    } catch { /* offline after all */ }
    if (!resp) return flash(t("not_on_run", { item_id: itemId }), "bad");
    if (resp.status === 404) return flash(t("not_on_route", { item_id: itemId }), "bad");
    if (!resp.ok) return flash(LANG === "en" ? await message(resp) : `${t("error")} ${resp.status}`, "bad");
    order = await resp.json();
    state.extra.set(itemId, order);
    flash(t("found_other_day", { item_id: itemId }), "warn");
  } else {
    flash("");
  }
  if (pickup) {
    if (!actionsOf(order).includes("pickup_confirmed")) {
      return flash(t("pickup_not_needed", { item_id: itemId, status: t(`status_${effectiveStatus(order)}`) }), "warn");
    }
    await record(order, "pickup_confirmed", {});
    return flash(t("pickup_done", { item_id: itemId }), "ok");
  }
  openSheet(itemId);
}

let stream = null;
let lastScan = { code: null, at: 0 };

async function startCamera() {
  const detector = new window.BarcodeDetector({ formats: ["code_128", "qr_code"] });
  try {
    stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false });
  } catch {
    return flash(t("camera_error"), "bad");
  }
  const video = $("#camera-video");
  video.srcObject = stream;
  $("#camera").hidden = false;
  await video.play().catch(() => {});
  const tick = async () => {
    if (!stream) return;
    try {
      const codes = await detector.detect(video);
      const raw = codes[0]?.rawValue;
      if (raw && (raw !== lastScan.code || Date.now() - lastScan.at > 3000)) {
        lastScan = { code: raw, at: Date.now() };
        if (navigator.vibrate) navigator.vibrate(80);
        if (!$("#pickup-mode").checked) stopCamera(); // a bag is scanned item after item
        await handleCode(raw);
      }
    } catch { /* a frame that could not be read */ }
    if (stream) setTimeout(tick, 250);
  };
  tick();
}

function stopCamera() {
  stream?.getTracks().forEach((track) => track.stop());
  stream = null;
  $("#camera").hidden = true;
}

// --- start ----------------------------------------------------------------------------------------

function wire() {
  $("#scan-form").addEventListener("submit", (e) => {
    e.preventDefault();
    handleCode($("#scan-input").value);
  });
  $("#pickup-mode").addEventListener("change", (e) => flash(e.target.checked ? t("pickup_mode_on") : "", "warn"));
  if ("BarcodeDetector" in window && navigator.mediaDevices?.getUserMedia) {
    $("#camera-btn").hidden = false;
    $("#camera-btn").addEventListener("click", startCamera);
    $("#camera-close").addEventListener("click", stopCamera);
  }
  $("#sheet-close").addEventListener("click", closeSheet);
  $("#sheet").addEventListener("close", () => { state.current = null; });
  for (const button of document.querySelectorAll("#sheet-actions [data-action]")) {
    button.addEventListener("click", () => showForm(button.dataset.action));
  }
  const delivered = $("#form-delivered");
  onSubmit(delivered, submitDelivered);
  for (const radio of delivered.elements.receiver_kind) radio.addEventListener("change", () => toggleReceiver(delivered));
  for (const radio of delivered.elements.id_kind) radio.addEventListener("change", () => toggleIdCheck(delivered));
  delivered.elements.amount.addEventListener("input", () => toggleWhy(delivered));
  onSubmit($("#form-failed_attempt"), submitFailed);
  onSubmit($("#form-dossier_picked_up"), submitDossier);
  onSubmit($("#form-correction"), submitCorrection);
  $("#d-photo").addEventListener("change", async (e) => {
    const file = e.target.files[0];
    if (!file) return;
    photo = await shrinkPhoto(file);
    const preview = $("#d-photo-preview");
    if (preview.src) URL.revokeObjectURL(preview.src);
    preview.src = URL.createObjectURL(photo);
    preview.hidden = false;
  });
  setupSignature();
  $("#outbox-badge").addEventListener("click", () => drain({ force: true }));

  const netBanner = () => { $("#net-banner").hidden = navigator.onLine; offlineIdWarning(); };
  window.addEventListener("online", () => { netBanner(); failures = 0; drain({ force: true }); });
  window.addEventListener("offline", netBanner);
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") drain({ force: true });
  });
  setInterval(() => drain(), TIMER_MS);
  setInterval(markPassedWindows, TIMER_MS);
  netBanner();

  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.register("/courier/sw.js", { scope: "/courier/" }).catch(() => {});
    navigator.serviceWorker.addEventListener("message", (e) => {
      if (e.data?.type === "drain") drain({ force: true });
    });
  }
}

async function start() {
  wire();
  wireLogout();
  // rows an earlier session left before their position step: send them as they are
  for (const row of await getAll("outbox")) {
    if (row.state === "locating") await putRow("outbox", { ...row, state: "pending" });
  }
  await reload();
  await loadRun();
  await drain({ force: true });
}

// For the browser tests and for support: what waits, and a way to send now.
window.courierApp = { drain: () => drain({ force: true }), outbox: () => getAll("outbox"), normaliseCode,
  nextWorkingDay, loadRun, windowPassed };

start();
