// The new route's form (/admin/routes/new): the courier list offers only the groups the chosen post
// office's routes may have (admin.org_services._may_drive, the save's check): the office's own
// couriers (data-office), those of no office who drive in its province only (data-province), and
// those who drive no route (neither). Choosing another office clears a courier who no longer fits.
// Without this script every group is offered and the save says why a courier does not fit.
const office = document.getElementById("f-post_office");
const courier = document.getElementById("f-courier");

function narrow({ keep }) {
  const provinces = JSON.parse(courier.dataset.officeProvinces || "{}");
  const chosen = office.value;
  const home = provinces[chosen] ?? "";
  const picked = courier.selectedOptions[0];
  for (const group of courier.querySelectorAll("optgroup")) {
    const { office: own, province } = group.dataset;
    let fits = !chosen || (own !== undefined ? own === chosen : province === undefined || province === home);
    // a form sent back by the server keeps what was sent (its message says why it does not fit)
    if (keep && picked && group.contains(picked)) fits = true;
    group.hidden = !fits;
    group.disabled = !fits;
  }
  if (picked?.matches(":disabled")) courier.value = "";
}

if (office && courier) {
  office.addEventListener("change", () => narrow({ keep: false }));
  narrow({ keep: true });
}
