"""The J-STD-033 bake table (Table 4-1, "Reference conditions for drying mounted or unmounted
SMD packages"): how long a moisture-sensitive package must bake, by body thickness, MSL and
oven temperature, to reset its exposure. Pure reference data and its lookup; no Flask, no
ORM.

Source: IPC/JEDEC J-STD-033D (2018) Table 4-1 as summarised in the project's DOMAIN.md §5.2
(values for ≤ 1.4 mm and ≤ 2.0 mm from eesemi.com/baketables.htm; the ≤ 2.0 mm MSL 5a row
and the ≤ 4.5 mm row as recalled there). Each cell has two columns: the bake when the floor
life was exceeded by more than 72 h (or the exposure is unknown: the package is taken as
saturated) and when it was exceeded by at most 72 h. The 90 °C and 40 °C bakes count only at
≤ 5 % RH; 125 °C has no humidity condition.
"""

from __future__ import annotations

from dataclasses import dataclass

DAY = 24

# Oven temperatures of the table's columns, °C, hottest first.
TEMPERATURES = (125, 90, 40)
# The most humidity a 90 °C or 40 °C bake may have, % RH.
DRY_OVEN_RH = 5.0
# Body thickness classes, mm: a package goes in the first class it fits.
THICKNESS_CLASSES = (1.4, 2.0, 4.5)
# The hours past the floor life up to which the "≤ 72 h" column applies.
SHORT_EXCESS_HOURS = 72

_2A_5A = ("2a", "3", "4", "5", "5a")

# (thickness class, MSL) -> {temperature: (hours when exceeded by > 72 h or unknown,
#                                          hours when exceeded by ≤ 72 h)}
BAKE_TABLE: dict[tuple[float, str], dict[int, tuple[float, float]]] = {
    (1.4, "2a"): {125: (5, 3), 90: (17, 11), 40: (8 * DAY, 5 * DAY)},
    (1.4, "3"): {125: (9, 7), 90: (33, 23), 40: (13 * DAY, 9 * DAY)},
    (1.4, "4"): {125: (11, 7), 90: (37, 23), 40: (15 * DAY, 9 * DAY)},
    (1.4, "5"): {125: (12, 7), 90: (41, 24), 40: (17 * DAY, 10 * DAY)},
    (1.4, "5a"): {125: (16, 10), 90: (54, 24), 40: (22 * DAY, 10 * DAY)},
    (2.0, "2a"): {125: (21, 16), 90: (3 * DAY, 2 * DAY), 40: (29 * DAY, 22 * DAY)},
    (2.0, "3"): {125: (27, 17), 90: (4 * DAY, 2 * DAY), 40: (37 * DAY, 23 * DAY)},
    (2.0, "4"): {125: (34, 20), 90: (5 * DAY, 3 * DAY), 40: (47 * DAY, 28 * DAY)},
    (2.0, "5"): {125: (40, 25), 90: (6 * DAY, 4 * DAY), 40: (57 * DAY, 35 * DAY)},
    (2.0, "5a"): {125: (48, 40), 90: (8 * DAY, 6 * DAY), 40: (79 * DAY, 56 * DAY)},
    **{(4.5, msl): {125: (48, 48), 90: (10 * DAY, 10 * DAY), 40: (79 * DAY, 67 * DAY)}
       for msl in _2A_5A},
}

# Levels the table has no row of, read as the row of another level: MSL 2 (floor life one
# year) as 2a, the nearest more sensitive level; MSL 6 (bake before use) as 5a, the most
# sensitive row.
LEVEL_ROW = {"2": "2a", "6": "5a"}


@dataclass(frozen=True)
class BakeRequirement:
    """What the table asks of a bake: `hours` at the column `temperature_c`, read from the
    "exceeded by ≤ 72 h" column when `short_exposure`, else the "> 72 h or unknown" one.
    `hours` is None when the bake's temperature or humidity is outside every column."""

    temperature_c: int | None
    hours: float | None
    short_exposure: bool


def thickness_class(thickness_mm: float | None) -> float:
    """The table's row for a body thickness: ≤ 1.4, ≤ 2.0 or ≤ 4.5 mm. An unknown thickness,
    or one above 4.5 mm (the table stops there), takes the thickest row."""
    if thickness_mm is not None:
        for limit in THICKNESS_CLASSES:
            if thickness_mm <= limit:
                return limit
    return THICKNESS_CLASSES[-1]


def column(temperature_c: float, rh_pct: float | None) -> int | None:
    """The table column a bake at `temperature_c` counts in: the hottest column at or below
    the oven's temperature (a 100 °C bake counts as a 90 °C one). Below 125 °C the oven must
    be dry (≤ 5 % RH; no humidity given means a dry oven). None when no column applies."""
    for temp in TEMPERATURES:
        if temperature_c >= temp:
            if temp != TEMPERATURES[0] and rh_pct is not None and rh_pct > DRY_OVEN_RH:
                return None
            return temp
    return None


def required(msl: str, thickness_mm: float | None, temperature_c: float,
             rh_pct: float | None = None, *,
             excess_hours: float | None = None) -> BakeRequirement:
    """The bake the table asks for a package of `msl` and `thickness_mm` in an oven at
    `temperature_c` / `rh_pct`. `excess_hours` is how far the exposure went past the floor
    life (negative or 0 when within it), None when the exposure is unknown: up to 72 h the
    "≤ 72 h" column applies, beyond it or unknown the "> 72 h" column.

    Raises ValueError for MSL 1 (it needs no bake) or an unknown level."""
    if msl == "1":
        raise ValueError("MSL 1 needs no bake.")
    row = LEVEL_ROW.get(msl, msl)
    if row not in _2A_5A:
        raise ValueError(f"Unknown MSL {msl!r}.")
    short = excess_hours is not None and excess_hours <= SHORT_EXCESS_HOURS
    temp = column(temperature_c, rh_pct)
    if temp is None:
        return BakeRequirement(None, None, short)
    long_hours, short_hours = BAKE_TABLE[thickness_class(thickness_mm), row][temp]
    return BakeRequirement(temp, float(short_hours if short else long_hours), short)


def meets(requirement: BakeRequirement, hours: float) -> bool:
    """Whether a bake of `hours` meets the requirement."""
    return requirement.hours is not None and hours >= requirement.hours
