// What the dashboard and the printable report share: labels of the statistics' keys in the
// page's language (never the raw key) and the rates as the page shows them.

import * as i18n from "./i18n.js";
import { t } from "./i18n.js";

export const RATE_KEYS = ["completion", "timely_acceptance", "on_time_completion", "satisfaction", "participation"];

/** The label of `key` under `prefix` (channel_, cat_, type_, item_state_, kind_, level_),
 * or the key itself when it is a name people typed (an online platform, a new category). */
export function label(prefix, key) {
  return i18n.has(`${prefix}${key}`) ? t(`${prefix}${key}`) : key;
}

/** A rate's percentage as shown, or null when there is nothing to rate. On-time completion
 * counts opinions issued on time; with nothing concluded a 100 % would contradict 已办结 0,
 * so it shows — then. */
export function ratePercent(stats, key) {
  const r = stats.rates[key];
  if (!r || r.percent == null || r.denominator === 0) return null;
  if (key === "on_time_completion" && stats.concluded === 0) return null;
  return r.percent;
}

export function fmtPercent(v) {
  return v == null ? "—" : `${Number(v).toFixed(1)}%`;
}
