// Cascading address selects: province → district (only units before 1 Jul 2025) → commune.
// Option values are unit codes, which the form posts; data-id carries the unit id used to fetch
// the children from /api/v1/units?parent=<id>. Without this script the server-rendered lists
// still work, and the server checks that the commune lies in the province.

function placeholder(select, text) {
  select.replaceChildren(new Option(text, ""));
}

function fill(select, units, text) {
  placeholder(select, text);
  for (const unit of units) {
    const option = new Option(unit.name, unit.code);
    option.dataset.id = String(unit.id);
    select.add(option);
  }
}

function selectedId(select) {
  const option = select.selectedOptions[0];
  return option ? option.dataset.id : undefined;
}

function setup(box) {
  const url = box.dataset.unitsUrl;
  const text = { choose: box.dataset.placeholder, loading: box.dataset.loading, failed: box.dataset.failed };
  const province = box.querySelector('[data-unit="province"]');
  const district = box.querySelector('[data-unit="district"]');
  const commune = box.querySelector('[data-unit="commune"]');
  const districtField = box.querySelector('[data-unit-field="district"]');
  let latest = 0; // answers to older requests are dropped

  async function children(parentId, target) {
    const ticket = ++latest;
    target.disabled = true;
    placeholder(target, text.loading);
    try {
      const resp = await fetch(`${url}?parent=${encodeURIComponent(parentId)}`, {
        headers: { Accept: "application/json" },
        credentials: "same-origin",
      });
      if (!resp.ok) throw new Error(`HTTP ${resp.status}`);
      const units = await resp.json();
      return ticket === latest ? units : null;
    } catch (err) {
      if (ticket === latest) placeholder(target, text.failed);
      return null;
    } finally {
      if (ticket === latest) target.disabled = false;
    }
  }

  function showDistricts(show) {
    districtField.hidden = !show;
    district.required = show;
    if (!show) placeholder(district, text.choose);
  }

  province.addEventListener("change", async () => {
    placeholder(commune, text.choose);
    showDistricts(false);
    const id = selectedId(province);
    if (!id) return;
    const units = await children(id, commune);
    if (!units) return;
    if (units.length && units[0].level === "district") {
      showDistricts(true);
      fill(district, units, text.choose);
      placeholder(commune, text.choose);
    } else {
      fill(commune, units, text.choose);
    }
  });

  district.addEventListener("change", async () => {
    placeholder(commune, text.choose);
    const id = selectedId(district);
    if (!id) return;
    const units = await children(id, commune);
    if (units) fill(commune, units, text.choose);
  });
}

for (const box of document.querySelectorAll("[data-units]")) setup(box);
