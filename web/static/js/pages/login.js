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
    const next = new URLSearchParams(location.search).get("next");
    location.href = next && next.startsWith("/") && !next.startsWith("//") ? next : "/console";
  } else {
    const data = await res.json().catch(() => ({}));
    document.getElementById("error").textContent = res.status === 401 ? t("login_failed") : (data.error && data.error.message) || t("login_failed");
  }
});
