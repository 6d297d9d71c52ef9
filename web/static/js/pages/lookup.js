// Public lookup: the lookup code shows progress (states and dates, nothing personal); the
// code plus the last 4 phone digits rate acceptance or handling when a stage is open.

import * as i18n from "../i18n.js";
import { t } from "../i18n.js";
import * as items from "../items.js";
import { $, h } from "../ui.js";

i18n.setup();
let current = null;

function render(p) {
  current = p;
  $("#result").hidden = false;
  $("#state").textContent = p.label || p.state;
  $("#due").textContent = p.due_on ? `${t("due_on")} ${p.due_on}` : "";
  $("#steps").replaceChildren(...p.steps.map((s) => h("li", {}, `${s.on} · ${s.label}`)));
  $("#eval").hidden = !(p.can_evaluate_acceptance || p.can_evaluate_handling);
}

$("#lookup").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  $("#msg").textContent = "";
  try {
    render(await items.publicProgress($("#code").value));
  } catch (err) {
    $("#result").hidden = true;
    $("#msg").textContent = err.unavailable ? t("unavailable") : t("lookup_not_found");
  }
});
for (const b of document.querySelectorAll("[data-satisfied]")) {
  b.addEventListener("click", async () => {
    if (!current) return;
    const stage = current.can_evaluate_handling ? "handling" : "acceptance";
    try {
      render(await items.publicEvaluate($("#code").value, $("#phone4").value, stage, b.dataset.satisfied === "true"));
      $("#eval-msg").textContent = t("kiosk_thanks");
    } catch (err) {
      $("#eval-msg").textContent = err.status === 429 ? err.message : t("lookup_not_found");
    }
  });
}
