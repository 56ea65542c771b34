// The coverage editor's commune filter (/routes/<code>/coverage, /admin/routes/<id>/coverage): the
// list narrows as one types, by name or code, without accents ("phuong 1" finds "Phường 1"). Without
// this script the filter's button (name="filter", the coverage form's first submit button, so Enter
// in the box presses it too) posts the form, and the server sends it back as posted, unsaved, with the
// same communes hidden (routing.views.coverage_form). Here the button and Enter in the box
// only narrow the list, on the page. Either way a hidden commune stays in the coverage form, ticked or
// not, so saving sends the same. Inline handlers would be blocked by the Content-Security-Policy.

const form = document.getElementById("coverage-form");
const button = document.getElementById("commune-filter-button");
const box = document.getElementById("f-commune-q");
const list = document.getElementById("commune-list");
const shown = document.getElementById("commune-shown");
const none = document.getElementById("commune-none");
const save = form?.querySelector("button[type=submit]:not([name=filter])");

// routes.text.fold: lower case, đ → d, no diacritics, punctuation as spaces, single spaces
function fold(text) {
  return text
    .toLowerCase()
    .replaceAll("đ", "d")
    .normalize("NFD")
    .replace(/\p{M}+/gu, "")
    .replace(/[^\p{L}\p{N}_\s/]+/gu, " ")
    .replace(/\s+/g, " ")
    .trim();
}

function narrow() {
  const wanted = fold(box.value);
  let count = 0;
  for (const label of list.querySelectorAll("label[data-filter]")) {
    const match = label.dataset.filter.includes(wanted);
    label.hidden = !match;
    count += match;
  }
  shown.value = String(count);
  none.hidden = count > 0;
}

if (form && button && box && list) {
  box.addEventListener("input", narrow);
  // Enter in another field submits with the form's first submit button, the filter's: it means
  // "save" there, as it did before the filter joined the form
  form.addEventListener("keydown", (event) => {
    const field = event.target;
    if (event.key === "Enter" && !event.isComposing && field !== box && field instanceof HTMLInputElement && save) {
      event.preventDefault();
      form.requestSubmit(save);
    }
  });
  // the button, or Enter in the box: the list is already narrowed; no round trip
  form.addEventListener("submit", (event) => {
    if (event.submitter === button) {
      event.preventDefault();
      narrow();
    }
  });
}
