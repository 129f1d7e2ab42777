// The compose form's live preview: whenever the template, language or
// sender changes, the server renders the exact mail again (the same
// render as the CLI's `template preview`) and the preview pane is replaced
// by its answer. Without this script the Preview button does the same.
"use strict";
(function () {
  const form = document.getElementById("compose");
  if (!form) return;
  const pane = () => document.getElementById("preview");
  async function refresh() {
    const query = new URLSearchParams();
    for (const name of ["template", "language", "sender"]) {
      query.set(name, form.elements[name].value);
    }
    const base = form.dataset.preview;
    const answer = await fetch(`${base}${base.includes("?") ? "&" : "?"}${query}`, { credentials: "same-origin" });
    if (!answer.ok) return;
    const html = await answer.text();
    const next = new DOMParser().parseFromString(html, "text/html").getElementById("preview");
    if (next) pane().replaceWith(next);
  }
  for (const name of ["template", "language", "sender"]) {
    form.elements[name].addEventListener("change", refresh);
  }
})();
