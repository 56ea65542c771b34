// The user form: show only the scope field of the chosen role (without JavaScript all are shown,
// and the service uses only the chosen role's one anyway).
const role = document.getElementById("f-role");
const parts = [...document.querySelectorAll("[data-for-roles]")];

function showScope() {
  for (const part of parts) {
    const roles = part.dataset.forRoles.split(" ");
    const hasError = part.querySelector(".has-error") !== null;
    part.hidden = !roles.includes(role.value) && !hasError;
  }
}

if (role) {
  role.addEventListener("change", showScope);
  showScope();
}
