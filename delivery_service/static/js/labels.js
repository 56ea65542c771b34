// The labels and handover page (/counter/labels): "tick all" ticks every item of the list. The
// print and manifest buttons need no script: they submit the same form (the manifest button with
// its own formaction), so the ticked items go with either. Inline handlers would be blocked by
// the page's Content-Security-Policy, hence this file.

const form = document.getElementById("print-form");
const all = document.getElementById("tick-all");

function boxes() {
  return form ? [...form.querySelectorAll('input[type="checkbox"][name="item_ids"]')] : [];
}

function showAll() {
  const ticked = boxes().filter((b) => b.checked).length;
  if (all) {
    all.checked = ticked > 0 && ticked === boxes().length;
    all.indeterminate = ticked > 0 && ticked < boxes().length;
  }
}

if (all) {
  all.addEventListener("change", () => {
    for (const box of boxes()) box.checked = all.checked;
    showAll();
  });
}
if (form) {
  form.addEventListener("change", (event) => {
    if (event.target instanceof HTMLInputElement && event.target.name === "item_ids") showAll();
  });
}

// Enter in the manifest's note would submit with the form's first button (print labels): make it
// the manifest's button instead.
const manifestButton = document.getElementById("manifest-button");
const note = form ? form.querySelector('input[name="note"]') : null;
if (note && manifestButton) {
  note.addEventListener("keydown", (event) => {
    if (event.key === "Enter") {
      event.preventDefault();
      if (!manifestButton.disabled) form.requestSubmit(manifestButton);
    }
  });
}
