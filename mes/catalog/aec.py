"""Reference data of the AEC qualification standards: which standard applies to which kind
of product, each standard's temperature grades, and its stresses with their minimum sample
size per lot, minimum lot count, acceptance and whether the units are preconditioned first.

Sources (docs/qualification.md lists them with what was verified):
- AEC-Q100 Rev H, Table 2 "Qualification test methods" (the values kept in Rev J, 11 Aug
  2023; the Grade 0 TC cycle count changed, not the samples), as tabled in the AEC QTP
  template and in DOMAIN.md §2.3; ESD HBM 3 units per voltage step (AEC-Q100-002), CDM 3
  units per voltage step (AEC-Q100-011), latch-up 6 units (AEC-Q100-004), ELFR 800 units
  × 3 lots (AEC-Q100-008). Grades 0 to 3 (grade 4 was dropped in Rev H).
- AEC-Q101 Rev E (1 Mar 2021), Table 2 (discretes): the 77 × 3, 0-fail backbone and the
  discrete-specific stresses HTRB, HTGB, H3TRB, IOL; one temperature range for every
  discrete, −40 … +125 °C at least (offered as grade 1), or −40 … +150 °C (grade 0).
- AEC-Q104 Rev A (28 Nov 2025), Table 1 (multichip modules): the Q100 groups A to G and the
  module-specific group H (BLR, LTSL, STEP, DROP, DPA, X-ray, acoustic microscopy); grades
  as AEC-Q100.

Pure data: no database, no requests."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from flask_babel import lazy_gettext as _l

from mes.vocabulary import ProductKind, QualStandard


@dataclass(frozen=True)
class Stress:
    """One stress of a standard's test table.

    `slot` is its number in the table ("A2"): stresses sharing a slot are alternatives (THB
    or HAST), either of which satisfies the slot. `sample_size` is the minimum number of
    units per lot and `lots` the minimum number of lots; `per_step` marks a sample counted
    per voltage step (ESD). `preconditioned`: surface-mount units go through preconditioning
    (J-STD-020 / JESD22-A113 at their MSL) before this stress. Acceptance is 0 fails."""

    code: str
    slot: str
    name: Any
    sample_size: int
    lots: int
    preconditioned: bool = False
    per_step: bool = False

    @property
    def group(self) -> str:
        return self.slot[0]


def _table(*stresses: Stress) -> Mapping[str, Stress]:
    return MappingProxyType({s.code: s for s in stresses})


# AEC-Q100 Rev H/J Table 2. Groups D (wafer-level, technology data) and F (production
# screens: PAT, SBA) carry no sample and are not recorded as stresses here.
AEC_Q100 = _table(
    Stress("PC", "A1", _l("Preconditioning"), 77, 3),
    Stress("THB", "A2", _l("Temperature humidity bias"), 77, 3, preconditioned=True),
    Stress("HAST", "A2", _l("Biased HAST"), 77, 3, preconditioned=True),
    Stress("AC", "A3", _l("Autoclave"), 77, 3, preconditioned=True),
    Stress("UHST", "A3", _l("Unbiased HAST"), 77, 3, preconditioned=True),
    Stress("TH", "A3", _l("Temperature humidity without bias"), 77, 3, preconditioned=True),
    Stress("TC", "A4", _l("Temperature cycling"), 77, 3, preconditioned=True),
    Stress("PTC", "A5", _l("Power temperature cycling"), 45, 1, preconditioned=True),
    Stress("HTSL", "A6", _l("High temperature storage life"), 45, 1),
    Stress("HTOL", "B1", _l("High temperature operating life"), 77, 3),
    Stress("ELFR", "B2", _l("Early life failure rate"), 800, 3),
    Stress("EDR", "B3", _l("NVM endurance, data retention and operational life"), 77, 3),
    Stress("WBS", "C1", _l("Wire bond shear (30 bonds from at least 5 units)"), 5, 1),
    Stress("WBP", "C2", _l("Wire bond pull (30 bonds from at least 5 units)"), 5, 1),
    Stress("SD", "C3", _l("Solderability"), 15, 1),
    Stress("PD", "C4", _l("Physical dimensions"), 10, 3),
    Stress("SBS", "C5", _l("Solder ball shear (5 balls from at least 10 units)"), 10, 3),
    Stress("LI", "C6", _l("Lead integrity"), 5, 1),
    Stress("HBM", "E2", _l("ESD human body model (3 units per voltage step)"), 3, 1,
           per_step=True),
    Stress("CDM", "E3", _l("ESD charged device model (3 units per voltage step)"), 3, 1,
           per_step=True),
    Stress("LU", "E4", _l("Latch-up"), 6, 1),
    Stress("ED", "E5", _l("Electrical distributions"), 30, 3),
    Stress("EMC", "E9", _l("Electromagnetic compatibility"), 1, 1),
    Stress("SER", "E11", _l("Soft error rate"), 3, 1),
    Stress("MS", "G1", _l("Mechanical shock"), 15, 1),
    Stress("VFV", "G2", _l("Variable frequency vibration"), 15, 1),
    Stress("CA", "G3", _l("Constant acceleration"), 15, 1),
    Stress("GFL", "G4", _l("Gross and fine leak"), 15, 1),
    Stress("DROP", "G5", _l("Package drop"), 5, 1),
    Stress("LT", "G6", _l("Lid torque"), 5, 1),
    Stress("DS", "G7", _l("Die shear"), 5, 1),
    Stress("IWV", "G8", _l("Internal water vapour"), 5, 1),
)

# AEC-Q101 Rev E Table 2 (discretes).
AEC_Q101 = _table(
    Stress("PC", "A1", _l("Preconditioning"), 77, 3),
    Stress("HAST", "A2", _l("Biased HAST"), 77, 3, preconditioned=True),
    Stress("H3TRB", "A2", _l("High humidity high temperature reverse bias"), 77, 3,
           preconditioned=True),
    Stress("AC", "A3", _l("Autoclave"), 77, 3, preconditioned=True),
    Stress("UHST", "A3", _l("Unbiased HAST"), 77, 3, preconditioned=True),
    Stress("TC", "A4", _l("Temperature cycling"), 77, 3, preconditioned=True),
    Stress("IOL", "A5", _l("Intermittent operational life"), 77, 3, preconditioned=True),
    Stress("PTC", "A5", _l("Power temperature cycling"), 77, 3, preconditioned=True),
    Stress("HTRB", "B1", _l("High temperature reverse bias"), 77, 3),
    Stress("HTGB", "B2", _l("High temperature gate bias"), 77, 3),
    Stress("DPA", "C1", _l("Destructive physical analysis"), 2, 1),
    Stress("PD", "C2", _l("Physical dimensions"), 30, 1),
    Stress("RSH", "C4", _l("Resistance to solder heat"), 30, 1),
    Stress("SD", "C5", _l("Solderability"), 10, 1),
    Stress("WBS", "C7", _l("Wire bond shear"), 5, 1),
    Stress("WBP", "C8", _l("Wire bond pull"), 5, 1),
    Stress("DS", "C9", _l("Die shear"), 5, 1),
    Stress("UIS", "C11", _l("Unclamped inductive switching"), 5, 1),
    Stress("HBM", "E2", _l("ESD human body model"), 30, 1),
    Stress("CDM", "E3", _l("ESD charged device model"), 30, 1),
)

# AEC-Q104 Rev A Table 1 (multichip modules): the Q100 stresses of groups A to E, and
# group H.
AEC_Q104 = _table(
    *(s for s in AEC_Q100.values() if s.group in "ABCE"),
    Stress("BLR", "H1", _l("Board level reliability"), 30, 1),
    Stress("LTSL", "H2", _l("Low temperature storage life"), 45, 1),
    Stress("STEP", "H3", _l("Start-up and temperature steps"), 5, 1),
    Stress("MDROP", "H4", _l("Drop (module)"), 5, 1),
    Stress("MDPA", "H5", _l("Destructive physical analysis (module)"), 2, 1),
    Stress("XRAY", "H6", _l("X-ray inspection"), 5, 1),
    Stress("AM", "H7", _l("Acoustic microscopy"), 5, 1),
)

STRESSES: Mapping[str, Mapping[str, Stress]] = MappingProxyType({
    QualStandard.AEC_Q100: AEC_Q100,
    QualStandard.AEC_Q101: AEC_Q101,
    QualStandard.AEC_Q104: AEC_Q104,
})

# The standard that qualifies each kind of product.
STANDARD_FOR_KIND: Mapping[str, QualStandard] = MappingProxyType({
    ProductKind.IC: QualStandard.AEC_Q100,
    ProductKind.DISCRETE: QualStandard.AEC_Q101,
    ProductKind.MODULE: QualStandard.AEC_Q104,
})

# Each standard's temperature grades, most demanding (0) first, with the ambient range.
GRADES: Mapping[str, Mapping[int, Any]] = MappingProxyType({
    QualStandard.AEC_Q100: MappingProxyType({
        0: _l("Grade 0 (−40 … 150 °C)"), 1: _l("Grade 1 (−40 … 125 °C)"),
        2: _l("Grade 2 (−40 … 105 °C)"), 3: _l("Grade 3 (−40 … 85 °C)")}),
    QualStandard.AEC_Q101: MappingProxyType({
        0: _l("Grade 0 (−40 … 150 °C)"), 1: _l("Grade 1 (−40 … 125 °C)")}),
    QualStandard.AEC_Q104: MappingProxyType({
        0: _l("Grade 0 (−40 … 150 °C)"), 1: _l("Grade 1 (−40 … 125 °C)"),
        2: _l("Grade 2 (−40 … 105 °C)"), 3: _l("Grade 3 (−40 … 85 °C)")}),
})

# Package names (their leading letters) of through-hole packages: every other package is
# surface-mount and is preconditioned before the humidity and cycling stresses.
THROUGH_HOLE = ("DIP", "PDIP", "CDIP", "SIP", "ZIP", "TO-92", "TO-220", "TO-247", "TO-3P",
                "PGA")

_ALIASES = {"ESD HBM": "HBM", "ESD CDM": "CDM", "LATCH UP": "LU", "LATCHUP": "LU",
            "THB HAST": "HAST", "UHAST": "UHST", "BHAST": "HAST"}


def standard_for(kind: str) -> QualStandard:
    return STANDARD_FOR_KIND[kind]


def surface_mount(package: str) -> bool:
    """Whether a package is surface-mount (everything not listed as through-hole)."""
    name = package.strip().upper()
    return not any(name.startswith(prefix) for prefix in THROUGH_HOLE)


def canonical(code: str) -> str:
    """A stress named as people write it ("ESD-HBM", "esd hbm", "HBM") as its table code."""
    name = re.sub(r"[\s_/-]+", " ", code.strip().upper())
    return _ALIASES.get(name, name.replace(" ", ""))


def stress(standard: str, code: str) -> Stress | None:
    return STRESSES.get(standard, {}).get(canonical(code))


def satisfied(standard: str, passed: Iterable[str], required: str) -> bool:
    """Whether the stresses `passed` satisfy the stress `required` of `standard`: the same
    stress, or an alternative in the same slot of the table (HAST for THB)."""
    table = STRESSES.get(standard, {})
    want = table.get(canonical(required))
    codes = {canonical(code) for code in passed}
    if want is None:
        return canonical(required) in codes
    return any(code in table and table[code].slot == want.slot for code in codes)
