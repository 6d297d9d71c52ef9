// The petition items REST API (web/items_api.py), in one place. Until the server offers a
// route, calls reject with err.unavailable = true and the pages say so plainly.

import { api } from "./ui.js";

const ROUTES = {
  register: "/api/items",
  byCode: (code) => `/api/items/lookup/${encodeURIComponent(code)}`,
  due: "/api/items/due",
  statistics: (year) => `/api/statistics?year=${year}`,
  annual: (year) => `/api/statistics/annual/${year}`,
  publicProgress: "/api/public/lookup",
  publicEvaluate: "/api/public/evaluate",
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

/** Items with deadlines in my scope: [{item_id, lookup_code, due_on, due_what, days_left}] */
export async function mine() {
  const data = await call(ROUTES.due);
  if (Array.isArray(data)) return data;
  return [...(data.overdue || []), ...(data.due_soon || []), ...(data.items || [])];
}

export async function statistics(year) {
  return call(ROUTES.statistics(year));
}

export async function annual(year) {
  return call(ROUTES.annual(year));
}

export async function publicProgress(code, phone4) {
  return call(ROUTES.publicProgress, { method: "POST", body: { lookup_code: code, phone_last4: phone4 }, bearer: "public" });
}

export async function publicEvaluate(body) {
  return call(ROUTES.publicEvaluate, { method: "POST", body, bearer: "public" });
}

export { ROUTES };
