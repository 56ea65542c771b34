// The coverage editor's commune filter (/routes/<code>/coverage, /admin/routes/<id>/coverage): the
// list narrows as one types, by name or code, without accents ("phuong 1" finds "Phường 1"). Without
// this script the filter box submits its own GET form (?q=) and the server hides the same communes
// (routing.views._matching). Either way a hidden commune stays in the coverage form, ticked or not,
// so saving sends the same. Inline handlers would be blocked by the Content-Security-Policy.

const filter = document.getElementById("commune-filter");
const box = document.getElementById("f-commune-q");
const list = document.getElementById("commune-list");
const shown = document.getElementById("commune-shown");
const none = document.getElementById("commune-none");

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

if (filter && box && list) {
  box.addEventListener("input", narrow);
  // Enter in the box: the list is already narrowed; no reload (it would drop unsaved edits)
  filter.addEventListener("submit", (event) => {
    event.preventDefault();
    narrow();
  });
}
