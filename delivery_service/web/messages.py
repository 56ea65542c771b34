"""Validation messages of marshmallow, the shared fields and the services, in the reader's language.

The services speak English (the API's language); people read these pages in Vietnamese first. Each
known message is matched as a whole and re-worded through the catalog; unknown ones pass unchanged.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable

from flask_babel import format_decimal, gettext

from delivery_service.imports.services import ADDRESS_HINT
from delivery_service.orders.schemas import (
    MAX_VND,
    MAX_WEIGHT_G,
    NAMED_WINDOWS,
    WINDOW_EARLIEST,
    WINDOW_ERROR,
    WINDOW_LATEST,
    WINDOW_SHORTEST,
    hhmm,
)


def _fixed(msgid_call: Callable[[], str]) -> Callable[[re.Match[str]], str]:
    return lambda _m: msgid_call()


def _range(m: re.Match[str]) -> str:
    """marshmallow's Range message, by its bounds: an amount of money, a weight, or any number."""
    low, high = int(m.group(1)), int(m.group(2))
    if (low, high) == (0, MAX_VND):
        return gettext("The amount must be between 0 and %(most)s đồng.", most=format_decimal(MAX_VND))
    if (low, high) == (1, MAX_WEIGHT_G):
        return weight_message()
    return gettext("Enter a number from %(low)s to %(high)s.", low=format_decimal(low),
                   high=format_decimal(high))


def weight_message() -> str:
    return gettext("Enter the weight in whole grams, from 1 to %(most)s.", most=format_decimal(MAX_WEIGHT_G))


def _day_range(m: re.Match[str]) -> str:
    """A Day field's bounds (fields.EARLIEST, LATEST), as the pages write dates."""
    low, high = (dt.date.fromisoformat(g).strftime("%d/%m/%Y") for g in m.groups())
    return gettext("Enter a date from %(low)s to %(high)s.", low=low, high=high)


_MESSAGES: list[tuple[re.Pattern[str], Callable[[re.Match[str]], str]]] = [
    (re.compile(r"Missing data for required field\.|Must not be empty\.|Field may not be null\."),
     _fixed(lambda: gettext("This field is required."))),
    (re.compile(r"Not a valid Vietnamese phone number\."),
     _fixed(lambda: gettext("Not a valid Vietnamese phone number."))),
    (re.compile(r"An ID number has 12 digits.*"),
     _fixed(lambda: gettext("An ID number has 12 digits (CCCD) or 9 digits (old ID card)."))),
    (re.compile(r"Longer than (\d+) characters\.|Length must be between \d+ and (\d+)\."
                r"|Longer than maximum length (\d+)\."),
     lambda m: gettext("At most %(n)s characters.", n=next(g for g in m.groups() if g))),
    (re.compile(r"Contains a NUL character or an unpaired surrogate\."),  # api.guards, any form
     _fixed(lambda: gettext("What was sent contains a character that cannot be stored (NUL, or a broken "
                            "Unicode character), often pasted from another program: go back, delete it and "
                            "send again."))),
    (re.compile(r"Contains control or invalid characters\."),
     _fixed(lambda: gettext("Contains characters that are not allowed."))),
    (re.compile(r"Not a valid integer\."), _fixed(lambda: gettext("Enter a whole number."))),
    (re.compile(r"Must be greater than or equal to (-?\d+) and less than or equal to (-?\d+)\."), _range),
    (re.compile(r"Must be greater than or equal to (\d{4}-\d\d-\d\d) and less than or equal to "
                r"(\d{4}-\d\d-\d\d)\."), _day_range),
    (re.compile(r"Must be greater than or equal to (-?\d+)\."),
     lambda m: gettext("Enter a number of at least %(low)s.", low=format_decimal(int(m.group(1))))),
    # --- the delivery window (orders.schemas.parse_window): a file's cell or the API's value ---
    (re.compile(re.escape(WINDOW_ERROR)),
     _fixed(lambda: gettext("Write “morning” or “sáng” (%(morning)s), “afternoon” or “chiều” "
                            "(%(afternoon)s), or a time range such as 08:00-10:00, between %(earliest)s and "
                            "%(latest)s, at least %(shortest)s minutes long.",
                            morning=NAMED_WINDOWS["morning"], afternoon=NAMED_WINDOWS["afternoon"],
                            earliest=hhmm(WINDOW_EARLIEST), latest=hhmm(WINDOW_LATEST),
                            shortest=WINDOW_SHORTEST))),
    (re.compile(r"The window must lie between (\d\d:\d\d) and (\d\d:\d\d)\."),
     lambda m: gettext("The delivery window must lie between %(earliest)s and %(latest)s.",
                       earliest=m.group(1), latest=m.group(2))),
    (re.compile(r"The window must end at least (\d+) minutes after it starts\."),
     lambda m: gettext("The delivery window must end at least %(shortest)s minutes after it starts.",
                       shortest=m.group(1))),
    (re.compile(r'Not a valid time: give "HH:MM"\.'),
     _fixed(lambda: gettext("Not a valid time: write it as HH:MM, for example 08:30."))),
    (re.compile(r"Not a valid date\."), _fixed(lambda: gettext("Not a valid date (dd/mm/yyyy)."))),
    # --- printing (delivery_service/printing/services.py); before the generic "Must be one of" ---
    (re.compile(r"Unknown label size: choose 100x150, 100x100, a6 or a4\."),
     _fixed(lambda: gettext("Unknown label size: choose 100x150, 100x100, A6 or A4."))),
    (re.compile(r"Unknown label format: choose pdf or zpl\."),
     _fixed(lambda: gettext("Unknown label format: choose PDF or ZPL."))),
    (re.compile(r"ZPL is for label printers: choose 100x150, 100x100 or a6\."),
     _fixed(lambda: gettext("ZPL is for label printers: choose 100x150, 100x100 or A6."))),
    (re.compile(r"Order (\S+) is cancelled: it gets no label\."),
     lambda m: gettext("Order %(item_id)s is cancelled: it gets no label.", item_id=m.group(1))),
    (re.compile(r"Order (\S+) is not on a route yet, and this counter prints labels only with the route: "
                r"dispatch it first\."),
     lambda m: gettext("Order %(item_id)s is not on a route yet, and this counter prints labels only with "
                       "the route: dispatch it first.", item_id=m.group(1))),
    (re.compile(r"There is no label to print: .*"),
     _fixed(lambda: gettext("There is no label to print: every order of the counter is printed already, or "
                            "none can be labelled yet."))),
    (re.compile(r"A manifest needs at least one item\."),
     _fixed(lambda: gettext("Tick at least one order for the manifest."))),
    (re.compile(r"No such order(?: at this counter)?: (.*)"),
     lambda m: gettext("No such order: %(items)s", items=m.group(1))),
    (re.compile(r"Cancelled, not handed over: (.*)"),
     lambda m: gettext("Cancelled, not handed over: %(items)s", items=m.group(1))),
    (re.compile(r"Choose the route of the courier taking the bag\."),
     _fixed(lambda: gettext("Choose the route of the courier taking the bag."))),
    (re.compile(r"(\S+) is not on a route yet, so not on route (\S+)'s manifest\."),
     lambda m: gettext("%(item_id)s is not on a route yet, so it cannot go to route %(code)s's courier.",
                       item_id=m.group(1), code=m.group(2))),
    (re.compile(r"(\S+) is on route (\S+), not on route (\S+)\."),
     lambda m: gettext("%(item_id)s is on route %(on)s, not on route %(code)s.", item_id=m.group(1),
                       on=m.group(2), code=m.group(3))),
    (re.compile(r"… and (\d+) more\."), lambda m: gettext("… and %(n)s more.", n=m.group(1))),
    (re.compile(r"The file is not ready yet\."), _fixed(lambda: gettext("The file is not ready yet."))),
    (re.compile(r"Rendering stopped before the end; print the batch again\."),
     _fixed(lambda: gettext("Rendering stopped before the end; print the batch again."))),
    (re.compile(r"Must be a5 or a4\."), _fixed(lambda: gettext("Choose A5 or A4."))),
    (re.compile(r"Must be one of: (.+)\.|Invalid enum .*"),
     lambda m: gettext("Choose one of: %(values)s.", values=m.group(1)) if m.group(1)
     else gettext("Choose one of the listed values.")),
    (re.compile(r"The appointment date is in the past\."),
     _fixed(lambda: gettext("The appointment date is in the past."))),
    (re.compile(r"The appointment date is more than a year away\."),
     _fixed(lambda: gettext("The appointment date is more than a year away."))),
    (re.compile(r"Required when delivering a result\."),
     _fixed(lambda: gettext("Required when delivering a result."))),
    # --- reports: counters' daily totals and reporting areas (delivery_service/reports/inputs.py);
    # before the addresses' "Unknown … code '…' on …", which quote the code ---
    (re.compile(r"The day is in the future\."),
     _fixed(lambda: gettext("The day is in the future: report a day's total once it has begun."))),
    (re.compile(r"The day is more than (\d+) days ago\."),
     lambda m: gettext("The day is more than %(n)s days ago.", n=m.group(1))),
    (re.compile(r"Must be a whole number from 0 to (\d+)\."),
     lambda m: gettext("Enter a whole number from 0 to %(max)s.", max=format_decimal(int(m.group(1))))),
    (re.compile(r"This day is given twice\."), _fixed(lambda: gettext("This day is given twice."))),
    (re.compile(r"Use 1-32 letters, digits, dots, dashes or underscores.*"),
     _fixed(lambda: gettext("Use 1–32 letters without diacritics, digits, dots, dashes or underscores."))),
    (re.compile(r"An area with code (\S+) exists already\."),
     lambda m: gettext("An area with code %(code)s exists already.", code=m.group(1))),
    (re.compile(r"Give at least one commune or former district.*"),
     _fixed(lambda: gettext("Give at least one commune or former district."))),
    (re.compile(r"Unknown commune code (\S+) \(2025 structure\)\."),
     lambda m: gettext("No commune has code %(code)s since 1 July 2025.", code=m.group(1))),
    (re.compile(r"Unknown commune code ([^'\s]+) on \S+\."),
     lambda m: gettext("No commune had code %(code)s before 1 July 2025.", code=m.group(1))),
    (re.compile(r"Unknown district code ([^'\s]+) on \S+\."),
     lambda m: gettext("No district had code %(code)s before 1 July 2025.", code=m.group(1))),
    (re.compile(r"Given twice \(also item \d+\)\."), _fixed(lambda: gettext("Given twice."))),
    (re.compile(r"(?:Commune|District) (\S+) has no communes\."),
     lambda m: gettext("Unit %(code)s holds no communes.", code=m.group(1))),
    # --- addresses (delivery_service/units/services.py) ---
    (re.compile(r"Unknown province code '?([^' ]*)'? on .*"),
     lambda m: gettext("Unknown province code %(code)s.", code=m.group(1))),
    (re.compile(r"Unknown district code '?([^' ]*)'? on .*"),
     lambda m: gettext("Unknown district code %(code)s; since 1 July 2025 there are no districts.",
                       code=m.group(1))),
    (re.compile(r"Unknown commune code '?([^' ]*)'? on .*"),
     lambda m: gettext("Unknown commune code %(code)s.", code=m.group(1))),
    (re.compile(r"Commune (\S+) is not in province (\S+)\."),
     lambda m: gettext("This commune (%(commune)s) is not in the chosen province (%(province)s).",
                       commune=m.group(1), province=m.group(2))),
    (re.compile(r"Commune (\S+) is not in district (\S+)\."),
     lambda m: gettext("This commune (%(commune)s) is not in the chosen district (%(district)s).",
                       commune=m.group(1), district=m.group(2))),
    (re.compile(r"District (\S+) is not in province (\S+)\."),
     lambda m: gettext("This district (%(district)s) is not in the chosen province (%(province)s).",
                       district=m.group(1), province=m.group(2))),
    (re.compile(r"This commune belongs to a district: give district_code\."),
     _fixed(lambda: gettext("This commune belongs to a district: choose the district."))),
    (re.compile(r"Unknown field\."), _fixed(lambda: gettext("Unknown field."))),
    # an address written as text (orders.services.address_candidates): the API's message names both
    # languages; a page shows the reader's
    (re.compile(r"Không rõ địa chỉ, có phải: (.*)\? / Ambiguous address: did you mean \1\?", re.S),
     lambda m: gettext("Ambiguous address: did you mean %(candidates)s?", candidates=m.group(1))),
    (re.compile(r"Không đọc được xã / phường .* / Address not recognised: .*"),
     _fixed(lambda: gettext("Address not recognised: write the commune (ward) and the province."))),
    # --- batch import (delivery_service/imports/services.py) ---
    (re.compile(r"Duplicate of line (\d+) \(same dossier_code and direction\)\."),
     lambda m: gettext("Same dossier code and service as line %(line)s.", line=m.group(1))),
    (re.compile(r"This line has (\d+) values but the header has (\d+) columns.*"),
     lambda m: gettext("This line has %(values)s values but the first line names %(columns)s columns: "
                       "check the separators and the quotes.", values=m.group(1), columns=m.group(2))),
    (re.compile(r"Column (\w+) has a value but no name in the first line\."),
     lambda m: gettext("Column %(column)s has a value but no name in the first line.", column=m.group(1))),
    (re.compile(r"The database refused this row\."),
     _fixed(lambda: gettext("The database refused this row."))),
    (re.compile(r"Old Excel files \(\.xls\) cannot be read.*"),
     _fixed(lambda: gettext("Old Excel files (.xls) cannot be read: save the sheet as .xlsx or as "
                            "CSV UTF-8."))),
    (re.compile(r"This \.xlsx file is not an Excel workbook.*"
                r"|The file cannot be read as an Excel workbook.*"),
     _fixed(lambda: gettext("The file cannot be read as an Excel workbook: save it again from Excel "
                            "as .xlsx."))),
    (re.compile(r"This file is an Excel workbook, not CSV.*"),
     _fixed(lambda: gettext("This file is an Excel workbook, not CSV: upload it with the .xlsx "
                            "extension."))),
    (re.compile(r"Only \.csv and \.xlsx files can be imported\."),
     _fixed(lambda: gettext("Only .csv and .xlsx files can be imported."))),
    (re.compile(r"The file is UTF-16 text.*|The file is not in UTF-8.*|The file is not valid UTF-8.*"),
     _fixed(lambda: gettext("The file is not in UTF-8: in Excel choose Save As, "
                            "“CSV UTF-8 (Comma delimited)”."))),
    (re.compile(r"The file contains NUL characters.*"),
     _fixed(lambda: gettext("The file contains NUL characters: it is not a CSV text file."))),
    (re.compile(r"The CSV is malformed in the record starting at line (\d+).*"),
     lambda m: gettext("The CSV file is malformed from line %(line)s: check the quotes (\") there.",
                       line=m.group(1))),
    (re.compile(r"The file is empty\."), _fixed(lambda: gettext("The file is empty."))),
    (re.compile(r"The first line must hold the column names.*"),
     _fixed(lambda: gettext("The first line must hold the column names (download the template)."))),
    (re.compile(r"The column (\w+) appears twice.*"),
     lambda m: gettext("The column %(column)s appears twice.", column=m.group(1))),
    (re.compile(r"Unknown columns: (.*?)\. The columns are: .*"),
     lambda m: gettext("Unknown columns: %(columns)s. Use the column names of the template.",
                       columns=m.group(1))),
    (re.compile(re.escape(ADDRESS_HINT)),
     _fixed(lambda: gettext("Or give the address in one column: address_text / dia_chi_day_du."))),
    (re.compile(r"Missing required columns: (.*)\."),
     lambda m: gettext("Missing required columns: %(columns)s.", columns=m.group(1))),
    (re.compile(r"The file has more than (\d+) rows.*"),
     lambda m: gettext("The file has more than %(rows)s rows: split it into several files.",
                       rows=m.group(1))),
    (re.compile(r"The file has a header but no rows of orders\."),
     _fixed(lambda: gettext("The file has a header but no rows of orders."))),
    (re.compile(r"The file is larger than (\d+) KB.*"),
     lambda m: gettext("The file is larger than %(kb)s KB: split it into several files.", kb=m.group(1))),
    (re.compile(r"No such counter\."), _fixed(lambda: gettext("No such counter."))),
    (re.compile(r"The import stopped \((\w+)\).*"),
     _fixed(lambda: gettext("The import stopped. The rows reported so far are stored; upload the file "
                            "again to import the rest (stored rows are reported as already existing)."))),
    # --- routes: coverage, moves and runs (delivery_service/routing/services.py) ---
    (re.compile(r"A route must cover at least one commune, in whole or in part\."),
     _fixed(lambda: gettext("A route must cover at least one commune, in whole or in part."))),
    (re.compile(r"Not a commune in force today: (.*)\."),
     lambda m: gettext("Not a commune in force today: %(units)s.", units=m.group(1))),
    (re.compile(r"Outside your province: (.*)\."),
     lambda m: gettext("Outside your province: %(units)s.", units=m.group(1))),
    (re.compile(r"Outside (.+?), the province of post office (\S+): (.*)\."),
     lambda m: gettext("Outside %(province)s, the province of post office %(office)s: %(units)s.",
                       province=m.group(1), office=m.group(2), units=m.group(3))),
    (re.compile(r"Unknown commune\."), _fixed(lambda: gettext("Unknown commune."))),
    (re.compile(r"Must be hamlet or street\."),
     _fixed(lambda: gettext("The kind must be “hamlet” or “street”."))),
    (re.compile(r"Give the hamlet or street name \(1-120 characters\)\."),
     _fixed(lambda: gettext("Give the hamlet or street name (1-120 characters)."))),
    (re.compile(r"The same hamlet or street as rule (\d+)\."),  # the coverage page words it by lines
     lambda m: gettext("The same hamlet or street as rule %(first)s.", first=m.group(1))),
    (re.compile(r"Must be a whole number of orders, 0 to (\d+), or empty for no limit\."),
     lambda m: gettext("Enter a whole number of orders from 0 to %(most)s, or leave it empty for no limit.",
                       most=format_decimal(int(m.group(1))))),
    (re.compile(r"The backup must be another existing route\."),
     _fixed(lambda: gettext("The backup must be another existing route."))),
    (re.compile(r"The backup must be a route of the same post office\."),
     _fixed(lambda: gettext("The backup must be a route of the same post office."))),
    (re.compile(r"Route (\S+) serves (.+?); the order's address is in (.+)\."),
     lambda m: gettext("Route %(code)s serves %(province)s, but the order's address is in "
                       "%(order_province)s: choose a route of %(order_province)s.", code=m.group(1),
                       province=m.group(2), order_province=m.group(3))),
    (re.compile(r"Route (\S+) is not active\."),
     lambda m: gettext("Route %(code)s is not active.", code=m.group(1))),
    (re.compile(r"The order is (\w+): it is with a courier or closed, so it cannot change route now\."),
     _fixed(lambda: gettext("The order is with a courier or closed, so it cannot change route now."))),
    (re.compile(r"The order is already on route (\S+) for (\d{4})-(\d{2})-(\d{2})\."),
     lambda m: gettext("The order is already on route %(code)s for %(day)s.", code=m.group(1),
                       day=f"{m.group(4)}/{m.group(3)}/{m.group(2)}")),
    (re.compile(r"The order changed meanwhile; reload it and try again\."),
     _fixed(lambda: gettext("The order changed meanwhile; reload the page and try again."))),
    (re.compile(r"No route (.+)"), lambda m: gettext("No route %(code)s.", code=m.group(1))),
    (re.compile(r"No order (.+)"), lambda m: gettext("No order %(item_id)s.", item_id=m.group(1))),
    (re.compile(r"Only a post office's supervisor or an administrator can dispatch orders\."),
     _fixed(lambda: gettext("Only a post office's supervisor or an administrator can dispatch orders."))),
    (re.compile(r"You can only re-sequence your own route\."),
     _fixed(lambda: gettext("You can only re-sequence your own route."))),
    (re.compile(r"Post office (\S+) has no position: set its latitude and longitude\."),
     lambda m: gettext("Post office %(code)s has no position: set its latitude and longitude.",
                       code=m.group(1))),
]


def translate_message(message: str) -> str:
    """The reader's-language version of a validation message; unknown messages pass unchanged."""
    text = str(message).strip()
    for pattern, render in _MESSAGES:
        match = pattern.fullmatch(text)
        if match:
            return render(match)
    return text
