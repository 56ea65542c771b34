// Ask before an action that cannot be undone (revoke an API token, deactivate an account, remove a
// webhook, rotate a signing secret, delete a job): the form (or the button pressed) carries its
// question, which names what it acts on, in data-confirm; "Cancel" leaves the page as it is.
// Inline onsubmit handlers would be blocked by the pages' Content-Security-Policy, hence this file.
// Without JavaScript such a form posts at once, as any other.
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (!(form instanceof HTMLFormElement)) return;
  const question = event.submitter?.dataset.confirm || form.dataset.confirm;
  if (question && !window.confirm(question)) event.preventDefault();
});
