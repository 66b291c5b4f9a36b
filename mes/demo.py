"""The demo plant: a fictional automotive OSAT with customers, a QFN and an SOP route,
products with AEC grades and qualifications, equipment, reason codes, material lots and one
user of every role (see docs/demo.md for the logins).

Everything is created through the catalog and auth services, so it is validated (the data
is loaded through the same marshmallow input schemas as the API) and audited with the actor
"demo". Names of companies and people are invented.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from marshmallow import Schema, ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from mes.auth import services as auth_services
from mes.catalog import services as catalog
from mes.catalog.models import Customer
from mes.catalog.schemas import (
    CustomerIn,
    EquipmentIn,
    MaterialLotIn,
    ProductIn,
    QualificationIn,
    ReasonCodeIn,
    RouteIn,
)
from mes.db import utcnow
from mes.errors import InvalidInput

ACTOR = "demo"

# --- customers -------------------------------------------------------------------------

# The OEM's customer code marks the demo plant as loaded.
OEM = "CYANLAKE"
TIER1 = "FERROQUILL"
CONSUMER = "BRIGHTMOOR"

CUSTOMERS = [
    {"code": OEM, "name": "Cyanlake Motors Co., Ltd.", "automotive": True},
    {"code": TIER1, "name": "Ferroquill Automotive Systems", "automotive": True},
    {"code": CONSUMER, "name": "Brightmoor Home Appliances", "automotive": False},
]

# --- routes ----------------------------------------------------------------------------

# code: (English name, kind, equipment kind, minimum step yield %, material types consumed)
STEPS: dict[str, tuple[str, str, str, float | None, list[str]]] = {
    "IQC": ("Incoming wafer inspection", "inspection", "microscope", None, []),
    "BG": ("Backgrind", "assembly", "grinder", 99.8, []),
    "MOUNT": ("Wafer mount", "assembly", "mounter", None, []),
    "SAW": ("Wafer saw", "assembly", "saw", 99.0, []),
    "OPT2": ("Post-saw optical inspection", "inspection", "aoi", 99.0, []),
    "DA": ("Die attach and cure", "assembly", "die_bonder", 99.5, ["epoxy", "leadframe"]),
    "PLASMA": ("Plasma clean", "assembly", "plasma", None, []),
    "WB": ("Wire bond", "assembly", "wire_bonder", 99.5, ["wire"]),
    "OPT3": ("Post-bond optical inspection", "inspection", "aoi", 99.5, []),
    "MOLD": ("Mold", "assembly", "molder", 99.5, ["mold_compound"]),
    "PMC": ("Post-mold cure", "assembly", "oven", None, []),
    "DEFLASH": ("Deflash", "assembly", "deflasher", 99.8, []),
    "PLATE": ("Plating", "assembly", "plater", 99.8, []),
    "MARK": ("Laser mark", "assembly", "laser_marker", 99.8, []),
    "SING": ("Package saw", "assembly", "singulation_saw", 99.5, []),
    "TRIM_FORM": ("Trim and form", "assembly", "trim_form", 99.5, []),
    "FVI": ("Final visual inspection", "inspection", "vision", 99.0, []),
    "FT-R": ("Final test, room temperature", "test", "tester", 95.0, []),
    "FT-H": ("Final test, hot", "test", "tester", 95.0, []),
    "FT-C": ("Final test, cold", "test", "tester", 95.0, []),
    "QA": ("Outgoing quality gate", "inspection", "qa_station", None, []),
    "TNR": ("Tape and reel", "pack", "taper", 99.9, []),
    "DRYPACK": ("Dry pack", "pack", "dry_pack_sealer", None, []),
}

# Chinese step names for the bilingual step labels to come; `name` stays English.
STEP_NAMES_ZH = {
    "IQC": "来料晶圆检验",
    "BG": "晶圆减薄",
    "MOUNT": "晶圆贴膜",
    "SAW": "晶圆切割",
    "OPT2": "切割后光学检验",
    "DA": "装片及固化",
    "PLASMA": "等离子清洗",
    "WB": "引线键合",
    "OPT3": "键合后光学检验",
    "MOLD": "塑封",
    "PMC": "塑封后固化",
    "DEFLASH": "去溢料",
    "PLATE": "电镀",
    "MARK": "激光打标",
    "SING": "封装体切割",
    "TRIM_FORM": "切筋成型",
    "FVI": "最终外观检验",
    "FT-R": "常温终测",
    "FT-H": "高温终测",
    "FT-C": "低温终测",
    "QA": "出货质量检验",
    "TNR": "编带",
    "DRYPACK": "防潮真空包装",
}

QFN_ROUTE = "QFN-AUTO"
SOP_ROUTE = "SOP-TF"

ROUTES = [
    (QFN_ROUTE, "QFN automotive: three-temperature final test, dry pack",
     ["IQC", "BG", "MOUNT", "SAW", "OPT2", "DA", "PLASMA", "WB", "OPT3", "MOLD", "PMC",
      "PLATE", "MARK", "SING", "FVI", "FT-R", "FT-H", "FT-C", "QA", "TNR", "DRYPACK"]),
    (SOP_ROUTE, "SOP with deflash and trim & form, two-temperature final test",
     ["IQC", "BG", "MOUNT", "SAW", "OPT2", "DA", "PLASMA", "WB", "OPT3", "MOLD", "PMC",
      "DEFLASH", "PLATE", "MARK", "TRIM_FORM", "FVI", "FT-R", "FT-H", "QA", "TNR",
      "DRYPACK"]),
]

# --- products and qualifications -------------------------------------------------------

PRODUCTS = [
    {"code": "GD-5532", "name": "Three-phase gate driver, 48 V", "package": "QFN-32 5x5",
     "route": QFN_ROUTE, "aec_grade": 0, "msl": "3", "customer": OEM},
    {"code": "LIN-3316", "name": "LIN transceiver with wake-up", "package": "QFN-16 3x3",
     "route": QFN_ROUTE, "aec_grade": 1, "msl": "2a", "customer": TIER1},
    {"code": "CS-0850", "name": "Hall-effect current sensor, 50 A", "package": "SOP-8",
     "route": SOP_ROUTE, "aec_grade": 1, "msl": "3", "customer": TIER1},
    {"code": "BM-4424", "name": "Six-cell battery monitor", "package": "QFN-24 4x4",
     "route": QFN_ROUTE, "aec_grade": 1, "msl": "3", "customer": OEM},
    {"code": "FC-1600", "name": "Brushless fan motor controller", "package": "SOP-16",
     "route": SOP_ROUTE, "aec_grade": None, "msl": "1", "customer": CONSUMER},
]

# Product -> qualification report. BM-4424 is a new automotive product still in
# qualification: it cannot be shipped to its automotive customer yet.
QUALIFICATIONS = {
    "GD-5532": "QR-2026-0412",
    "LIN-3316": "QR-2026-0287",
    "CS-0850": "QR-2026-0355",
}

# AEC-Q100 stress tests (group, test), each 77 units x 3 lots with 0 fails.
AEC_Q100_TESTS = [("A2", "HAST"), ("A4", "TC"), ("A6", "HTSL"), ("B1", "HTOL"),
                  ("E2", "ESD HBM"), ("E3", "ESD CDM"), ("E4", "LU")]

# --- equipment -------------------------------------------------------------------------

EQUIPMENT = [
    ("MIC-01", "microscope", "Wafer inspection microscope, IQC bench 1", "standby"),
    ("MIC-02", "microscope", "Wafer inspection microscope, IQC bench 2", "standby"),
    ("BG-01", "grinder", "Backgrinder, 12-inch, in-line polish", "productive"),
    ("BG-02", "grinder", "Backgrinder, 8/12-inch", "standby"),
    ("MNT-01", "mounter", "Wafer tape mounter with UV cure", "productive"),
    ("SAW-01", "saw", "Dual-spindle wafer saw", "productive"),
    ("SAW-02", "saw", "Dual-spindle wafer saw", "productive"),
    ("SAW-03", "saw", "Single-spindle wafer saw", "standby"),
    ("AOI-01", "aoi", "Automatic optical inspection, post-saw", "productive"),
    ("AOI-02", "aoi", "Automatic optical inspection, post-bond", "productive"),
    ("DB-01", "die_bonder", "Epoxy die bonder with in-line cure", "productive"),
    ("DB-02", "die_bonder", "Epoxy die bonder with in-line cure", "standby"),
    ("PLS-01", "plasma", "Argon/hydrogen strip plasma cleaner", "productive"),
    ("WB-01", "wire_bonder", "Ball bonder, Au/Cu, bay 3", "productive"),
    ("WB-02", "wire_bonder", "Ball bonder, Au/Cu, bay 3", "productive"),
    ("WB-03", "wire_bonder", "Ball bonder, Cu, bay 3", "unscheduled_down"),
    ("WB-04", "wire_bonder", "Ball bonder, Cu, bay 3", "standby"),
    ("MLD-01", "molder", "Transfer mold press, 4 plungers", "productive"),
    ("MLD-02", "molder", "Transfer mold press, 4 plungers", "standby"),
    ("OVN-01", "oven", "Post-mold cure oven, nitrogen", "productive"),
    ("OVN-02", "oven", "Post-mold cure oven, nitrogen", "standby"),
    ("DFL-01", "deflasher", "Water-jet deflash line", "standby"),
    ("PLT-01", "plater", "Matte tin reel-to-reel plating line", "productive"),
    ("LM-01", "laser_marker", "Fibre laser marker with mark inspection", "productive"),
    ("LM-02", "laser_marker", "Fibre laser marker with mark inspection", "standby"),
    ("PSW-01", "singulation_saw", "Package saw for QFN strips", "productive"),
    ("PSW-02", "singulation_saw", "Package saw for QFN strips", "standby"),
    ("TF-01", "trim_form", "Trim and form press, SOP-8/16 tooling", "productive"),
    ("FVI-01", "vision", "Five-side package vision inspection", "productive"),
    ("FVI-02", "vision", "Five-side package vision inspection", "standby"),
    ("TST-01", "tester", "Mixed-signal tester with tri-temp handler", "productive"),
    ("TST-02", "tester", "Mixed-signal tester with tri-temp handler", "productive"),
    ("TST-03", "tester", "Mixed-signal tester with tri-temp handler", "engineering"),
    ("OQA-01", "qa_station", "Outgoing quality sampling station", "standby"),
    ("TNR-01", "taper", "Tape and reel machine, 12 mm carrier tape", "productive"),
    ("TNR-02", "taper", "Tape and reel machine, 8/12/16 mm carrier tape", "standby"),
    ("DPK-01", "dry_pack_sealer", "Vacuum dry-pack sealer with desiccant and HIC",
     "standby"),
]

# --- reason codes ----------------------------------------------------------------------

REASON_CODES = [
    # Rejects counted at track-out.
    ("SAW-CHIP", "reject", "Die chipping at wafer saw", "晶圆切割崩边"),
    ("SAW-CRACK", "reject", "Die crack", "芯片裂纹"),
    ("OPT-SCRATCH", "reject", "Scratch on die surface", "芯片表面划伤"),
    ("OPT-CONTAM", "reject", "Foreign material on die", "芯片表面异物沾污"),
    ("DA-VOID", "reject", "Die-attach voids above limit", "装片空洞超标"),
    ("DA-TILT", "reject", "Die tilt out of specification", "芯片倾斜超规"),
    ("DA-BLEED", "reject", "Epoxy bleed onto die or bond fingers", "银胶溢出"),
    ("WB-NSOP", "reject", "Non-stick on pad", "焊盘不粘"),
    ("WB-NSOL", "reject", "Non-stick on lead", "引脚不粘"),
    ("WB-BALL", "reject", "Ball lift", "焊球脱落"),
    ("WB-BROKEN", "reject", "Broken or missing wire", "断线或缺线"),
    ("MOLD-VOID", "reject", "Mold void", "塑封空洞"),
    ("MOLD-WIRE-SWEEP", "reject", "Wire sweep during molding", "塑封冲丝"),
    ("MOLD-INCOMPLETE", "reject", "Incomplete fill", "塑封填充不满"),
    ("PLATE-THICK", "reject", "Plating thickness out of specification", "镀层厚度超规"),
    ("MARK-ILLEG", "reject", "Illegible mark", "打标不清"),
    ("SING-BURR", "reject", "Burr at package saw", "切割毛刺"),
    ("LEAD-COPLANARITY", "reject", "Lead coplanarity out of specification", "引脚共面性不良"),
    ("PKG-CRACK", "reject", "Package crack or chip-out", "塑封体裂纹或缺损"),
    ("FT-OPEN-SHORT", "reject", "Open/short failure", "开短路失效"),
    ("FT-LEAK", "reject", "Leakage current failure", "漏电流失效"),
    ("FT-PARAM", "reject", "Parametric failure", "参数失效"),
    ("FT-FUNC", "reject", "Functional failure", "功能失效"),
    ("FT-PAT", "reject", "PAT outlier", "PAT 异常值"),
    ("TNR-ORIENT", "reject", "Wrong orientation in carrier pocket", "编带方向错误"),
    # Holds placed by people or by the automatic screens.
    ("HOLD-YIELD", "hold", "Low step yield", "工序良率偏低"),
    ("HOLD-SBA", "hold", "Statistical yield or bin limit exceeded (SBA)",
     "统计良率或分 bin 超限 (SBA)"),
    ("HOLD-PAT", "hold", "PAT failures above limit", "PAT 失效超限"),
    ("HOLD-CUST", "hold", "Customer request", "客户要求"),
    ("HOLD-MAT", "hold", "Suspect material", "可疑物料"),
    ("HOLD-EQUIP", "hold", "Suspect equipment", "可疑设备"),
    ("HOLD-ENG", "hold", "Engineering evaluation", "工程评估"),
    ("HOLD-MSL", "hold", "Moisture floor life exceeded", "湿敏车间寿命超期"),
    # Scrap in a disposition.
    ("SCRAP-YIELD", "scrap", "Scrapped for low yield", "低良率报废"),
    ("SCRAP-DAMAGE", "scrap", "Scrapped for handling damage", "搬运损伤报废"),
    ("SCRAP-MRB", "scrap", "Scrapped by material review board decision", "MRB 判定报废"),
    ("SCRAP-ENG", "scrap", "Engineering samples consumed", "工程样品报废"),
]

# --- material lots ---------------------------------------------------------------------

# (code, material type, description, days until expiry from loading; negative = expired)
MATERIAL_LOTS = [
    ("EPX-2611-001", "epoxy", "Ag-filled conductive die-attach epoxy, 5 cc syringe", 150),
    ("EPX-2611-002", "epoxy", "Ag-filled conductive die-attach epoxy, 5 cc syringe", 180),
    ("EPX-2609-011", "epoxy", "Ag-filled conductive die-attach epoxy, 5 cc syringe", -3),
    ("AUW-2610-014", "wire", "Au bonding wire 4N, 0.8 mil (20 um), 1000 m spool", 540),
    ("AUW-2611-002", "wire", "Au bonding wire 4N, 0.8 mil (20 um), 1000 m spool", 600),
    ("CUW-2611-003", "wire", "Pd-coated Cu bonding wire, 0.8 mil (20 um), 1000 m spool", 180),
    ("CUW-2611-004", "wire", "Pd-coated Cu bonding wire, 0.8 mil (20 um), 1000 m spool", 200),
    ("EMC-2611-007", "mold_compound", "Green epoxy mold compound, low stress, 14 mm tablet",
     90),
    ("EMC-2611-008", "mold_compound", "Green epoxy mold compound, low stress, 14 mm tablet",
     120),
    ("LF-Q5532-2610-021", "leadframe", "QFN-32 5x5 bare Cu leadframe strip", 330),
    ("LF-Q3316-2611-005", "leadframe", "QFN-16 3x3 bare Cu leadframe strip", 365),
    ("LF-Q4424-2611-009", "leadframe", "QFN-24 4x4 bare Cu leadframe strip", 365),
    ("LF-S08-2610-033", "leadframe", "SOP-8 Cu leadframe strip, Ag spot-plated", 300),
    ("LF-S16-2611-012", "leadframe", "SOP-16 Cu leadframe strip, Ag spot-plated", 365),
]

# --- users -----------------------------------------------------------------------------

# Demo logins, documented in docs/demo.md. Change them before any real use.
DEMO_USERS = [
    {"username": "admin", "role": "admin", "password": "demo-admin-2026",
     "display_name": "Demo administrator"},
    {"username": "engineer", "role": "engineer", "password": "demo-engineer-2026",
     "display_name": "Demo process engineer"},
    {"username": "qa", "role": "qa", "password": "demo-qa-2026",
     "display_name": "Demo QA engineer"},
    {"username": "qa2", "role": "qa", "password": "demo-qa2-2026",
     "display_name": "Demo QA engineer (second person)"},
    {"username": "planner", "role": "planner", "password": "demo-planner-2026",
     "display_name": "Demo planner"},
    {"username": "op1", "role": "operator", "password": "demo-op1-2026",
     "display_name": "Demo operator 1"},
    {"username": "op2", "role": "operator", "password": "demo-op2-2026",
     "display_name": "Demo operator 2"},
    {"username": "cyanlake", "role": "customer", "password": "demo-cyanlake-2026",
     "customer": OEM, "display_name": "Cyanlake Motors supplier quality"},
    {"username": "ferroquill", "role": "customer", "password": "demo-ferroquill-2026",
     "customer": TIER1, "display_name": "Ferroquill supplier quality"},
]


def _load(schema: Schema, data: dict[str, Any], what: str) -> dict[str, Any]:
    """Validate one record through an API input schema (InvalidInput naming it if wrong)."""
    try:
        return schema.load(data)
    except ValidationError as exc:
        raise InvalidInput(f"Invalid demo {what}.", fields={what: [str(exc.messages)]}) \
            from None


def _validated() -> dict[str, list[dict[str, Any]]]:
    """Every master-data record, loaded through its input schema before anything is
    created, so invalid demo data changes nothing."""
    now = utcnow()
    routes = [{"code": code, "name": name,
               "steps": [{"code": step, "name": STEPS[step][0], "kind": STEPS[step][1],
                          "equipment_kind": STEPS[step][2], "min_yield": STEPS[step][3],
                          "materials": STEPS[step][4]} for step in steps]}
              for code, name, steps in ROUTES]
    qualifications = [
        {"product": product,
         "data": _load(QualificationIn(), {
             "standard": "AEC-Q100", "grade": grade, "report": QUALIFICATIONS[product],
             "tests": [{"test": test, "group": group, "sample_size": 77, "lots": 3,
                        "fails": 0} for group, test in AEC_Q100_TESTS]},
             f"qualification {product}")}
        for product, grade in ((p["code"], p["aec_grade"]) for p in PRODUCTS)
        if product in QUALIFICATIONS]
    return {
        "customers": [_load(CustomerIn(), c, f"customer {c['code']}") for c in CUSTOMERS],
        "routes": [_load(RouteIn(), r, f"route {r['code']}") for r in routes],
        "products": [_load(ProductIn(), p, f"product {p['code']}") for p in PRODUCTS],
        "qualifications": qualifications,
        "equipment": [_load(EquipmentIn(), {"code": code, "kind": kind, "name": name,
                                            "state": state}, f"equipment {code}")
                      for code, kind, name, state in EQUIPMENT],
        "reason_codes": [_load(ReasonCodeIn(), {"code": code, "kind": kind,
                                                "description": text, "description_zh": zh},
                               f"reason code {code}")
                         for code, kind, text, zh in REASON_CODES],
        "material_lots": [_load(MaterialLotIn(), {
            "code": code, "material": material, "description": text,
            "expires_at": (now + timedelta(days=days)).isoformat()}, f"material lot {code}")
            for code, material, text, days in MATERIAL_LOTS],
    }


def _create_master_data(session: Session, data: dict[str, list[dict[str, Any]]]) -> None:
    for customer in data["customers"]:
        catalog.create_customer(session, ACTOR, customer)
    for route in data["routes"]:
        catalog.create_route(session, ACTOR, route)
    products = {p["code"]: catalog.create_product(session, ACTOR, p) for p in data["products"]}
    for qual in data["qualifications"]:
        catalog.add_qualification(session, ACTOR, products[qual["product"]], qual["data"])
    for equipment in data["equipment"]:
        catalog.create_equipment(session, ACTOR, equipment)
    for reason in data["reason_codes"]:
        catalog.create_reason_code(session, ACTOR, reason)
    for lot in data["material_lots"]:
        catalog.create_material_lot(session, ACTOR, lot)


def _create_users(session: Session) -> None:
    for user in DEMO_USERS:
        auth_services.create_user(session, ACTOR, **user)


def load_demo(session: Session) -> bool:
    """Create the demo plant in the caller's transaction and return True; when it is already
    present (the OEM customer exists) change nothing and return False.

    Raises InvalidInput if a demo record fails its input schema or the password policy, and
    Conflict if part of the demo data exists without the OEM customer; the caller rolls back.
    """
    if session.scalar(select(Customer.id).where(Customer.code == OEM)) is not None:
        return False
    _create_master_data(session, _validated())
    _create_users(session)
    # Lots with history come last: they need the routes, equipment, material lots and
    # operators above.
    return True
