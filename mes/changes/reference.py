"""Reference data of change control: which stresses a change of each kind must pass again
on what it introduces, and the notice a product change notification gives.

Sources:
- AEC-Q100 Rev H (2014), Table 3 "Process change qualification guidelines for the selection
  of tests" (Rev J, 2023, keeps the table): for each kind of change (rows grouped here into
  the five kinds an engineer records) the stresses of Table 2 to repeat. A kind here is the
  union of its rows' stress marks that this plant records as stresses (the assembly and
  package-integrity checks such as wire bond pull are process controls, not stresses);
  preconditioning is not a stress of its own: the humidity and temperature-cycling results
  record it (mes/catalog, qualification rules). A required stress is also met by its
  alternative in the same slot of Table 2 (THB or biased HAST; autoclave, unbiased HAST or
  TH: `mes.catalog.aec.satisfied`).
- JEDEC J-STD-046 "Customer notification standard for product/process changes by
  electronic product suppliers": a change that may affect form, fit, function, quality or
  reliability is notified at least 90 days before it takes effect for the customer
  (`PCN_NOTICE_DAYS`, configurable, at least 1).
Re-verify the marks against the AEC-Q100 revision your customers contract before relying on
them for a customer's approval.
"""

from __future__ import annotations

from mes.vocabulary import ChangeKind

# Table 3 rows behind each kind:
# material: molding compound, die attach, lead frame material and plating, bond wire.
# process: wafer fab process (diffusion, metallisation, passivation) and assembly process
#          (die preparation, wire bonding, molding process) changes.
# site: fab site transfer and assembly site transfer (the whole package family again).
# design: active element design, circuit routing, die shrink.
# test: final test site or test program change (electrical distributions).
CHANGE_STRESSES: dict[ChangeKind, tuple[str, ...]] = {
    ChangeKind.MATERIAL: ("TC", "HAST", "UHST", "HTSL"),
    ChangeKind.PROCESS: ("TC", "HAST", "HTSL", "HTOL", "ELFR"),
    ChangeKind.SITE: ("TC", "HAST", "UHST", "HTSL", "HTOL", "ELFR", "HBM", "CDM", "LU", "ED"),
    ChangeKind.DESIGN: ("HTOL", "ELFR", "HBM", "CDM", "LU", "ED"),
    ChangeKind.TEST: ("ED",),
}

def required_stresses(kind: str) -> tuple[str, ...]:
    """The stresses a change of `kind` must pass again (AEC-Q100 Table 3)."""
    return CHANGE_STRESSES[ChangeKind(kind)]
