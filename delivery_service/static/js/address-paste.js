// A pasted address fills the counter form's address: POST /api/v1/addresses/parse (same origin,
// the clerk's session with the form's CSRF token) reads the province, commune and detail; this
// script selects them in the cascading selects of units.js and fills an empty detail field. When
// the reader is not sure of the commune it offers its ranked candidates as buttons and selects no
// commune itself; a province it is sure of (province_sure) is selected, with its communes to choose
// from. Every field a line does not fill is emptied of what an earlier line filled (the province
// with its lists, the commune, and the detail unless the clerk changed it), so that a new citizen's
// order never keeps the last one's address unnoticed; what the clerk chose or typed stays.
// Without this script the box stays hidden and the selects work as before.

function option(select, code) {
  return [...select.options].find((o) => o.value === code);
}

function fillSelect(select, units, placeholderText) {
  select.replaceChildren(new Option(placeholderText, ""));
  for (const unit of units) {
    const o = new Option(unit.name, unit.code);
    o.dataset.id = String(unit.id);
    select.add(o);
  }
}

function label(reading) {
  return [reading.commune, reading.district, reading.province]
    .filter((u) => u)
    .map((u) => u.name)
    .join(", ");
}

function setup(box) {
  const form = box.closest("form");
  const unitsBox = form.querySelector("[data-units]");
  const unitsUrl = unitsBox.dataset.unitsUrl;
  const choose = unitsBox.dataset.placeholder;
  const province = form.querySelector('[data-unit="province"]');
  const district = form.querySelector('[data-unit="district"]');
  const commune = form.querySelector('[data-unit="commune"]');
  const districtField = form.querySelector('[data-unit-field="district"]');
  const detail = form.querySelector("#f-address_detail");
  const csrf = form.querySelector('input[name="csrf_token"]').value;
  const input = box.querySelector("[data-address-text]");
  const button = box.querySelector("[data-address-read]");
  const status = box.querySelector("[data-address-status]");
  const choices = box.querySelector("[data-address-choices]");
  const text = box.dataset;
  let latest = 0; // answers to older requests are dropped
  let filled = null; // the detail the last line wrote, while the field still holds it
  let selected = null; // the commune the last sure line selected (not one the clerk chose)
  let region = null; // the province the last line selected (sure, chosen among its candidates, or certain)

  // The detail of a new line: into an empty field, or over what the last line wrote.
  function fillDetail(value) {
    if (detail.value.trim() && detail.value !== filled) return;
    detail.value = value || "";
    filled = detail.value || null;
  }

  function showDistricts(units) {
    const show = units !== null;
    districtField.hidden = !show;
    district.required = show;
    fillSelect(district, units || [], choose);
  }

  // A line that is not sure takes back what the last one selected and wrote (what the clerk chose
  // or typed stays): the province too, with its lists.
  function forget() {
    if (selected !== null && commune.value === selected) commune.value = "";
    selected = null;
    if (filled !== null && detail.value === filled) detail.value = "";
    filled = null;
    if (region !== null && province.value === region) {
      province.value = "";
      showDistricts(null);
      fillSelect(commune, [], choose);
    }
    region = null;
  }

  async function children(parentId) {
    const resp = await fetch(`${unitsUrl}?parent=${encodeURIComponent(parentId)}`, {
      headers: { Accept: "application/json" },
      credentials: "same-origin",
    });
    if (!resp.ok) throw new Error(`HTTP ${resp.status}`);
    return resp.json();
  }

  // Select a province read with certainty, its communes (or districts) listed, none chosen; a
  // province already selected keeps its lists and what the clerk chose there.
  async function showProvince(unit) {
    const p = option(province, unit.code);
    if (!p) return false;
    region = p.value;
    if (province.value !== p.value) {
      province.value = p.value;
      const units = await children(p.dataset.id);
      const districts = units.length && units[0].level === "district";
      showDistricts(districts ? units : null);
      fillSelect(commune, districts ? [] : units, choose);
    }
    return true;
  }

  // Select a reading's units in the form; false when the form's lists do not have them.
  async function apply(reading) {
    if (!reading.province || !reading.commune) return false;
    const p = option(province, reading.province.code);
    if (!p) return false;
    province.value = p.value;
    region = p.value; // taken back by the next line, even if this one fails below
    let units = await children(p.dataset.id);
    if (units.length && units[0].level === "district") {
      if (!reading.district) return false;
      showDistricts(units);
      const d = option(district, reading.district.code);
      if (!d) return false;
      district.value = d.value;
      units = await children(d.dataset.id);
    } else {
      showDistricts(null);
    }
    fillSelect(commune, units, choose);
    const c = option(commune, reading.commune.code);
    if (!c) return false;
    commune.value = c.value;
    return true;
  }

  function say(message) {
    status.textContent = message;
  }

  function offer(candidates) {
    choices.replaceChildren();
    for (const reading of candidates) {
      const b = document.createElement("button");
      b.type = "button";
      b.className = "btn btn-quiet";
      b.textContent = label(reading);
      b.addEventListener("click", async () => {
        if (await apply(reading)) {
          selected = commune.value; // a line's reading, chosen: the next line may take it back
          region = province.value;
          choices.hidden = true;
          say(text.sure);
          commune.focus();
        }
      });
      choices.append(b);
    }
    choices.hidden = candidates.length === 0;
  }

  async function read() {
    const line = input.value.trim();
    if (!line) return;
    const ticket = ++latest;
    button.disabled = true;
    choices.hidden = true;
    try {
      const resp = await fetch(box.dataset.parseUrl, {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": csrf },
        credentials: "same-origin",
        body: JSON.stringify({ text: line }),
      });
      if (!resp.ok) throw new Error(`HTTP ${resp.status}`);
      const answer = await resp.json();
      if (ticket !== latest) return;
      if (answer.sure && (await apply(answer))) {
        if (ticket !== latest) return; // a newer line is being read: its answer decides
        selected = commune.value;
        fillDetail(answer.detail);
        const former = answer.written ? ` ${text.former} ${label(answer.written)}.` : "";
        say(text.sure + former);
        return;
      }
      if (ticket !== latest) return;
      // Not sure: the current readings with a commune, the reader's best first.
      const seen = new Set();
      const readings = [answer, ...answer.candidates].filter((r) => {
        if (!r.commune || r.legacy || seen.has(r.commune.id)) return false;
        seen.add(r.commune.id);
        return true;
      });
      forget();
      // a province it is sure of is selected even so, its communes to choose from
      const shown = answer.province_sure && answer.province ? await showProvince(answer.province) : false;
      if (ticket !== latest) return;
      if (readings.length || shown) fillDetail(answer.detail);
      say(readings.length ? text.unsure : shown ? text.province : text.none);
      offer(readings.slice(0, 5));
    } catch (err) {
      if (ticket === latest) say(text.failed);
    } finally {
      if (ticket === latest) button.disabled = false;
    }
  }

  button.addEventListener("click", read);
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter") {
      event.preventDefault(); // not the form's submit
      read();
    }
  });
  input.addEventListener("paste", () => setTimeout(read, 0));
  box.hidden = false;
}

for (const box of document.querySelectorAll("[data-address-paste]")) setup(box);
