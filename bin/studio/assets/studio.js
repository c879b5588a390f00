// The studio's only script, compiled into the binary. Every page works without
// it; it adds keys: Escape leaves a form (its Cancel link), Ctrl+Enter or
// Cmd+Enter saves from a text area (Enter already saves from a one-line field).
"use strict";
document.addEventListener("keydown", (event) => {
  const form = event.target.closest && event.target.closest("form.edit");
  if (!form) return;
  if (event.key === "Escape" && form.dataset.cancel) {
    event.preventDefault();
    window.location.assign(form.dataset.cancel);
  } else if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
    event.preventDefault();
    form.requestSubmit();
  }
});
