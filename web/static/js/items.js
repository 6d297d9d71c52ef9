// The petition items REST API (web/items/), in one place. Until the server offers a
// route, calls reject with err.unavailable = true and the pages say so plainly.

import { api } from "./ui.js";

const ROUTES = {
  register: "/api/items",
  byCode: (code) => `/api/items/lookup?code=${encodeURIComponent(code)}`,
  overdue: "/api/items/overdue",
  statistics: (year) => `/api/stats?year=${year}`,
  annual: (year) => `/api/stats/report?year=${year}`,
  publicProgress: (code) => `/api/public/progress?code=${encodeURIComponent(code)}`,
  publicEvaluate: "/api/public/evaluate",
  list: "/api/items",
  dueWithin: (days) => `/api/items/due?within_days=${days}`,
  history: (id) => `/api/items/${id}/history`,
  sessions: (id) => `/api/items/${id}/sessions`,
  item: (id) => `/api/items/${id}`,
  action: (id, name) => `/api/items/${id}/${name}`,
  notice: (id, kind) => `/api/items/${id}/notices/${kind}`,
  leaders: "/api/leaders",
  attachments: (id) => `/api/items/${id}/attachments`,
  attachment: (id, aid) => `/api/items/${id}/attachments/${aid}`,
  upload: (id) => `/api/upload/items/${id}/attachments`,
  orgs: "/api/orgs",
  csv: "/api/items.csv",
  handlers: (unitId) => (unitId ? `/api/handlers?unit_id=${unitId}` : "/api/handlers"),
};

function missingRoute(err) {
  return (err.status === 404 && /^404/.test(err.message)) || err.status === 405 || err.status === 501;
}

async function call(path, opts) {
  try {
    return await api(path, opts);
  } catch (err) {
    if (missingRoute(err)) err.unavailable = true;
    throw err;
  }
}

export function codeOf(item) {
  return item.lookup_code_formatted || item.lookup_code || "";
}

export async function register(body) {
  const data = await call(ROUTES.register, { method: "POST", body });
  return data.item || data;
}

export async function byCode(code) {
  const data = await call(ROUTES.byCode(code.trim()));
  return data.item || data;
}

/** Open items with a unit deadline in my scope, overdue first, then by due day:
 * [{item_id, lookup_code, due_on, due_what, days_left}]. The due list is asked for the whole
 * year ahead (the API's longest window): an item due in 8 weeks is still my open item. */
export async function mine() {
  const [overdue, soon] = await Promise.all([call(ROUTES.overdue), call(ROUTES.dueWithin(366))]);
  const seen = new Set();
  return [...overdue.items, ...soon.items]
    .filter((d) => !seen.has(d.item_id) && seen.add(d.item_id))
    .sort((a, b) => a.days_left - b.days_left);
}

/** The urgency group of a due-list entry: overdue, within 3 days, within 7, later. */
export function urgency(d) {
  if (d.days_left < 0) return "overdue";
  if (d.days_left <= 3) return "within3";
  if (d.days_left <= 7) return "within7";
  return "later";
}

/** The item list: `query` holds the API's filters (state, channel, unit_id, limit, offset...). */
export async function list(query) {
  const qs = new URLSearchParams(Object.entries(query).filter(([, v]) => v !== "" && v != null));
  return (await call(`${ROUTES.list}?${qs}`)).items;
}

/** The CSV export of the list for `query` (the list's filters and order, no paging). */
export function csvUrl(query) {
  const qs = new URLSearchParams(Object.entries(query).filter(([, v]) => v !== "" && v != null));
  return `${ROUTES.csv}?${qs}`;
}

/** Officials who may be named as handlers: of my scope, or of the subtree of `unitId`. */
export async function handlers(unitId) {
  return (await call(ROUTES.handlers(unitId))).handlers;
}

/** Due-list entries (overdue, or due within `days`), for the list's deadline filters. */
export async function dueList({ overdue = false, within = 7 } = {}) {
  return (await call(overdue ? ROUTES.overdue : ROUTES.dueWithin(within))).items;
}

export async function item(id) {
  return call(ROUTES.item(id));
}

export async function history(id) {
  return (await call(ROUTES.history(id))).history;
}

export async function sessions(id) {
  return (await call(ROUTES.sessions(id))).sessions;
}

/** A lifecycle action (web/items/actions.py); answers the item as it is afterwards. */
export async function act(id, name, body) {
  return call(ROUTES.action(id, name), { method: "POST", body });
}

export async function attachments(id) {
  return (await call(ROUTES.attachments(id))).attachments;
}

export function attachmentUrl(id, aid) {
  return ROUTES.attachment(id, aid);
}

/** Upload a file as a multipart form (the login cookie and the CSRF header, as any POST). */
export async function upload(id, file) {
  const me = await api("/api/me");
  const form = new FormData();
  form.append("file", file, file.name);
  const res = await fetch(ROUTES.upload(id), { method: "POST", headers: { "X-CSRF-Token": me.csrf_token || "" }, body: form });
  const data = await res.json().catch(() => null);
  if (!res.ok) {
    const err = new Error((data && data.error && data.error.message) || `${res.status}`);
    err.status = res.status;
    err.code = data && data.error && data.error.code;
    throw err;
  }
  return data;
}

export function noticeUrl(id, kind) {
  return ROUTES.notice(id, kind);
}

export async function leaders() {
  return (await call(ROUTES.leaders)).leaders;
}

export async function units() {
  return (await call(ROUTES.orgs)).units;
}

export async function statistics(year) {
  return call(ROUTES.statistics(year));
}

export function annualUrl(year) {
  return ROUTES.annual(year);
}

export async function publicProgress(code) {
  return call(ROUTES.publicProgress(code.trim()));
}

/** stage: "acceptance" | "handling" */
export async function publicEvaluate(code, phone4, stage, satisfied) {
  return call(ROUTES.publicEvaluate, {
    method: "POST",
    body: { code: code.trim(), phone_last4: phone4, stage, satisfied },
    noCsrf: true,
  });
}

export { ROUTES };
