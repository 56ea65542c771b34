"""Administration pages: what an IT officer runs from the browser instead of `delivery-service`
commands. An admin with no area sees everything; an admin whose ``area_unit_id`` is a province (a
province admin) sees and changes only what lies in that province (see ``scope``)."""
