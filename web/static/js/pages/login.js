// Staff sign-in (the page's script is a file: the CSP allows no inline scripts).
import * as i18n from "../i18n.js";
import { t } from "../i18n.js";

i18n.setup();
const form = document.getElementById("login");
form.addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const body = { username: form.username.value, password: form.password.value };
  const res = await fetch("/api/login", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  if (res.ok) {
    sessionStorage.clear();
    location.href = nextPath(new URLSearchParams(location.search).get("next"));
  } else {
    const data = await res.json().catch(() => ({}));
    const code = data.error && data.error.code;
    // the page's language: a known code has its text; only an unknown one shows the server's
    let text = t("login_failed");
    if (res.status !== 401 && code && i18n.has(`err_${code}`)) text = t(`err_${code}`);
    else if (res.status !== 401 && data.error && data.error.message) text = data.error.message;
    document.getElementById("error").textContent = text;
  }
});

/**
 * Where to go after signing in: a path of this site (`/room?x`), never another origin.
 * `//evil`, `/\evil` (browsers read `\` as `/`) and `/<tab>/evil` (the URL parser drops tabs
 * and newlines) all lead elsewhere; the parser, asked for the origin, has the last word.
 */
function nextPath(raw) {
  const fallback = "/console";
  if (!raw || !raw.startsWith("/") || raw.startsWith("//") || raw.includes("\\")) return fallback;
  let url;
  try {
    url = new URL(raw, location.origin);
  } catch {
    return fallback;
  }
  if (url.origin !== location.origin || url.pathname.startsWith("//")) return fallback;
  return url.pathname + url.search + url.hash;
}
