// Files dropped on a form with an `input.drop` join the files chosen in
// that input (a drop anywhere on the form counts, not only on the input),
// and the input lists them by name. Without this script the browser still
// takes a file dropped onto the input itself, and "choose" always works.
"use strict";
(function () {
  for (const input of document.querySelectorAll("input[type=file].drop")) {
    const zone = input.form || input;
    const list = document.createElement("ul");
    list.className = "dropped";
    list.setAttribute("aria-live", "polite");
    input.insertAdjacentElement("afterend", list);
    const show = () => {
      list.replaceChildren(...Array.from(input.files, (f) => {
        const li = document.createElement("li");
        li.textContent = `${f.name} (${Math.max(1, Math.round(f.size / 1024))} KB)`;
        return li;
      }));
    };
    const carriesFiles = (e) => e.dataTransfer && Array.from(e.dataTransfer.types || []).includes("Files");
    for (const type of ["dragenter", "dragover"]) {
      zone.addEventListener(type, (e) => {
        if (!carriesFiles(e)) return;
        e.preventDefault();
        e.dataTransfer.dropEffect = "copy";
        zone.classList.add("dragging");
      });
    }
    zone.addEventListener("dragleave", (e) => {
      if (e.target === zone) zone.classList.remove("dragging");
    });
    zone.addEventListener("drop", (e) => {
      zone.classList.remove("dragging");
      if (!carriesFiles(e) || e.dataTransfer.files.length === 0) return;
      e.preventDefault();
      const all = new DataTransfer();
      for (const f of input.files) all.items.add(f);
      for (const f of e.dataTransfer.files) all.items.add(f);
      input.files = all.files;
      input.dispatchEvent(new Event("change", { bubbles: true }));
    });
    input.addEventListener("change", show);
  }
})();
