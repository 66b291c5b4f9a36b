"""The demo plant: a fictional automotive OSAT with customers, a QFN and an SOP route,
products with AEC grades and qualifications, equipment, reason codes, material lots, one
user of every role (see docs/demo.md for the logins) and about 200 lots with the history of
the last 30 days.

Everything is created through the catalog, auth and floor services, so it is validated (the
data is loaded through the same marshmallow input schemas as the API) and audited: master
data with the actor "demo", lot moves with the users who made them, each at its simulated
time (mes.db.simulated_time). Names of companies and people are invented.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import current_app, has_app_context
from flask_babel import lazy_gettext as _l
from marshmallow import Schema, ValidationError
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from mes.auth import services as auth_services
from mes.auth.actor import SystemActor
from mes.auth.models import User
from mes.catalog import services as catalog
from mes.catalog.maintenance_demo import load_demo_maintenance
from mes.catalog.models import Customer, MaterialLot, Product
from mes.catalog.schemas import (
    BomIn,
    CustomerIn,
    DurableIn,
    EquipmentIn,
    MaterialLotIn,
    ProductIn,
    QualificationIn,
    ReasonCodeIn,
    RouteIn,
)
from mes.catalog.services import StepInfo, get_route, route_step_infos
from mes.changes import services as changes
from mes.changes.schemas import ChangeIn
from mes.complaints.demo import load_demo_complaints
from mes.config import DEFAULTS as CONFIG_DEFAULTS
from mes.db import simulated_time, utcnow
from mes.errors import InvalidInput
from mes.floor import services as floor
from mes.floor.models import Lot, StepRun
from mes.floor.schemas import LotIn
from mes.forecast.demo import load_demo_outlooks
from mes.orders.demo import load_demo_orders
from mes.partners.demo import PARTNER, PARTNER_USER, load_demo_partners
from mes.quality import moisture
from mes.quality import services as quality
from mes.shipping import packing
from mes.shipping import services as shipping
from mes.shipping.models import PackUnit
from mes.spc.demo import load_demo_spc
from mes.testfloor import insertions, programs
from mes.testfloor import services as testfloor
from mes.testfloor.models import TestInsertion
from mes.testfloor.stdf_writer import PartSpec, TestSpec, write_stdf
from mes.vocabulary import ACTIVE_LOT_STATES, AVAILABLE_EQUIPMENT_STATES, LotState, PackKind

ACTOR: SystemActor = "demo"

# --- customers -------------------------------------------------------------------------

# The OEM's customer code marks the demo plant as loaded.
OEM = "CYANLAKE"
TIER1 = "FERROQUILL"
CONSUMER = "BRIGHTMOOR"

CUSTOMERS = [
    {"code": OEM, "name": "Cyanlake Motors Co., Ltd.", "automotive": True},
    {"code": TIER1, "name": "Ferroquill Automotive Systems", "automotive": True},
    {"code": CONSUMER, "name": "Brightmoor Home Appliances", "automotive": False},
    # A partner organisation (mes.partners.demo): sees the lots Cyanlake grants it.
    {"code": PARTNER, "name": "Kestrel Drive Systems", "automotive": True, "kind": "partner"},
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
    "STEPCUT": ("Wettable-flank step cut", "assembly", "step_cut_saw", 99.8, []),
    "SING": ("Package saw", "assembly", "singulation_saw", 99.5, []),
    "TRIM_FORM": ("Trim and form", "assembly", "trim_form", 99.5, []),
    "FVI": ("Final visual inspection", "inspection", "vision", 99.0, []),
    "FT-R": ("Final test, room temperature", "test", "tester", 95.0, []),
    "FT-H": ("Final test, hot", "test", "tester", 95.0, []),
    "FT-C": ("Final test, cold", "test", "tester", 95.0, []),
    "QA": ("Outgoing quality gate", "inspection", "qa_station", None, []),
    "BAKE": ("Bake before dry pack", "assembly", "bake_oven", None, []),
    "TNR": ("Tape and reel", "pack", "taper", 99.9, []),
    "DRYPACK": ("Dry pack", "pack", "dry_pack_sealer", None, []),
}

# Chinese step names (route_step.name_zh, shown to zh_CN users); `name` stays English.
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
    "STEPCUT": "可润湿侧翼阶梯切割",
    "SING": "封装体切割",
    "TRIM_FORM": "切筋成型",
    "FVI": "最终外观检验",
    "FT-R": "常温终测",
    "FT-H": "高温终测",
    "FT-C": "低温终测",
    "QA": "出货质量检验",
    "BAKE": "干燥包装前烘烤",
    "TNR": "编带",
    "DRYPACK": "防潮真空包装",
}

QFN_ROUTE = "QFN-AUTO"
SOP_ROUTE = "SOP-TF"
# Non-automotive parts are tested at room temperature only.
SOP_RT_ROUTE = "SOP-RT"

ROUTES = [
    (QFN_ROUTE, "QFN automotive: three-temperature final test, dry pack",
     ["IQC", "BG", "MOUNT", "SAW", "OPT2", "DA", "PLASMA", "WB", "OPT3", "MOLD", "PMC",
      "PLATE", "MARK", "STEPCUT", "SING", "FVI", "FT-R", "FT-H", "FT-C", "QA", "BAKE", "TNR",
      "DRYPACK"]),
    (SOP_ROUTE, "SOP with deflash and trim & form, two-temperature final test",
     ["IQC", "BG", "MOUNT", "SAW", "OPT2", "DA", "PLASMA", "WB", "OPT3", "MOLD", "PMC",
      "DEFLASH", "PLATE", "MARK", "TRIM_FORM", "FVI", "FT-R", "FT-H", "QA", "BAKE", "TNR",
      "DRYPACK"]),
    (SOP_RT_ROUTE, "SOP with deflash and trim & form, room-temperature final test",
     ["IQC", "BG", "MOUNT", "SAW", "OPT2", "DA", "PLASMA", "WB", "OPT3", "MOLD", "PMC",
      "DEFLASH", "PLATE", "MARK", "TRIM_FORM", "FVI", "FT-R", "QA", "BAKE", "TNR",
      "DRYPACK"]),
]

# Moisture control (J-STD-033): the exposure clock starts at the track-out of post-mold
# cure; the bake before dry pack, in JEDEC trays before tape and reel, meets the bake table
# for every moisture-sensitive product of the demo (≤ 1.4 mm bodies, MSL 3 and 2a: 9 h and
# 5 h at 125 °C even when the exposure is long past the floor life).
MOISTURE_START_STEP = "PMC"
BAKE_RECIPE = {"temperature_c": 125, "hours": 9}
# The step whose track-out seals the lot in its dry bag.
DRY_PACK_STEP = "DRYPACK"
# A lot found beyond its exposure time at dry pack (waiting too long after the bake) is
# baked again on its reels, at 90 °C in a dry oven.
REBAKE = {"temperature_c": 90, "rh_pct": 5}

# --- products and qualifications -------------------------------------------------------

# Master data as request bodies (loaded through the API's schemas), hence Any values.
PRODUCTS: list[dict[str, Any]] = [
    {"code": "GD-5532", "name": "Three-phase gate driver, 48 V", "package": "QFN-32 5x5",
     "route": QFN_ROUTE, "aec_grade": 0, "msl": "3", "customer": OEM,
     "mark_template": "GD5532\n{date_code}\n{trace_code}",
     "standard_pack_qty": {"reel": 2500}, "customer_part_number": "EVH7-A2C-0412",
     "body_thickness_mm": 0.9, "peak_reflow_c": 260, "met_hours": 24},
    {"code": "LIN-3316", "name": "LIN transceiver with wake-up", "package": "QFN-16 3x3",
     "route": QFN_ROUTE, "aec_grade": 1, "msl": "2a", "customer": TIER1,
     "mark_template": "L3316\n{date_code}{trace_code}",
     "standard_pack_qty": {"reel": 5000}, "customer_part_number": "BCM-7731-LIN",
     "body_thickness_mm": 0.75, "peak_reflow_c": 260, "met_hours": 24},
    {"code": "CS-0850", "name": "Hall-effect current sensor, 50 A", "package": "SOP-8",
     "route": SOP_ROUTE, "aec_grade": 1, "msl": "3", "customer": TIER1,
     "mark_template": "CS0850\n{date_code} {trace_code}",
     "standard_pack_qty": {"reel": 2500, "tube": 100}, "customer_part_number": "BCM-2209-ISNS",
     "body_thickness_mm": 1.4, "peak_reflow_c": 260, "met_hours": 24},
    {"code": "BM-4424", "name": "Six-cell battery monitor", "package": "QFN-24 4x4",
     "route": QFN_ROUTE, "aec_grade": 1, "msl": "3", "customer": OEM,
     "mark_template": "BM4424\n{date_code}\n{trace_code}",
     "standard_pack_qty": {"reel": 3000}, "customer_part_number": "EVH7-A2C-0519",
     "body_thickness_mm": 0.9, "peak_reflow_c": 260, "met_hours": 24},
    {"code": "FC-1600", "name": "Brushless fan motor controller", "package": "SOP-16",
     "route": SOP_RT_ROUTE, "aec_grade": None, "msl": "1", "customer": CONSUMER,
     "mark_template": "{device}\n{date_code} {trace_code}",
     "standard_pack_qty": {"reel": 2500, "tube": 50},
     "body_thickness_mm": 1.5, "peak_reflow_c": 260, "met_hours": 24},
]

# Product -> qualification report. BM-4424 is a new automotive product still in
# qualification: it cannot be shipped to its automotive customer yet.
QUALIFICATIONS = {
    "GD-5532": "QR-2026-0412",
    "LIN-3316": "QR-2026-0287",
    "CS-0850": "QR-2026-0355",
}

# The AEC-Q100 plan of a surface-mount product (test, units per lot, lots, preconditioned),
# each at the minimum sample of the standard's table (mes.catalog.aec) with 0 fails: the
# humidity and cycling stresses after preconditioning at the product's MSL.
AEC_Q100_TESTS = [("HAST", 77, 3, True), ("UHST", 77, 3, True), ("TC", 77, 3, True),
                  ("HTSL", 45, 1, False), ("HTOL", 77, 3, False), ("ELFR", 800, 3, False),
                  ("HBM", 3, 1, False), ("CDM", 3, 1, False), ("LU", 6, 1, False)]

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
    ("OVN-01", "oven", "Post-mold cure oven, nitrogen, 8 magazines", "productive"),
    ("OVN-02", "oven", "Post-mold cure oven, nitrogen, 8 magazines", "standby"),
    ("DFL-01", "deflasher", "Water-jet deflash line", "standby"),
    ("PLT-01", "plater", "Matte tin reel-to-reel plating line, 4 lanes", "productive"),
    ("LM-01", "laser_marker", "Fibre laser marker with mark inspection", "productive"),
    ("LM-02", "laser_marker", "Fibre laser marker with mark inspection", "standby"),
    ("SCS-01", "step_cut_saw", "Step-cut saw for wettable-flank QFN strips", "productive"),
    ("PSW-01", "singulation_saw", "Package saw for QFN strips", "productive"),
    ("PSW-02", "singulation_saw", "Package saw for QFN strips", "standby"),
    ("TF-01", "trim_form", "Trim and form press, SOP-8/16 tooling", "productive"),
    ("FVI-01", "vision", "Five-side package vision inspection", "productive"),
    ("FVI-02", "vision", "Five-side package vision inspection", "standby"),
    ("TST-01", "tester", "Mixed-signal tester with tri-temp handler", "productive"),
    ("TST-02", "tester", "Mixed-signal tester with tri-temp handler", "productive"),
    ("TST-03", "tester", "Mixed-signal tester with tri-temp handler", "engineering"),
    ("OQA-01", "qa_station", "Outgoing quality sampling station", "standby"),
    ("BKO-01", "bake_oven", "Bake oven, 125 °C, JEDEC trays, dry nitrogen", "productive"),
    ("BKO-02", "bake_oven", "Bake oven, 40-125 °C, dry nitrogen", "standby"),
    ("TNR-01", "taper", "Tape and reel machine, 12 mm carrier tape", "productive"),
    ("TNR-02", "taper", "Tape and reel machine, 8/12/16 mm carrier tape", "standby"),
    ("DPK-01", "dry_pack_sealer", "Vacuum dry-pack sealer with desiccant and HIC",
     "standby"),
]
# The batch tools: the lots each runs at once (the others run one lot at a time) and the
# units it holds at once, where that is the tighter limit.
CAPACITY: dict[str, tuple[int, int | None]] = {
    "OVN-01": (8, None), "OVN-02": (8, None), "PLT-01": (4, 400_000), "BKO-01": (12, None),
    "BKO-02": (12, None)}

# --- durables --------------------------------------------------------------------------

# Durables mounted on the tools that wear them, per equipment kind: (kind, code prefix,
# life limit, warning level %). A demo lot is a whole 25-wafer lot (up to 295,000 units, 9.4
# million touchdowns at wire bond), so the limits are those of parts that last a few lots;
# the history changes a part when the next lot would pass its limit, as a technician does.
DURABLES_BY_TOOL_KIND: dict[str, list[tuple[str, str, int, int]]] = {
    "saw": [("saw_blade", "BLD-W", 8_000_000, 90)],
    "wire_bonder": [("capillary", "CAP", 60_000_000, 85)],
    "molder": [("mold_chase", "CHS", 40_000_000, 90)],
    "singulation_saw": [("saw_blade", "BLD-P", 6_000_000, 90)],
    "tester": [("load_board", "LB", 30_000_000, 90), ("socket", "SKT", 5_000_000, 80)],
}
# Spares in the crib: a probe card for the wafer prober to come, a fresh capillary.
# Parts mounted with uses made elsewhere: WB-03 (down for repair through the history) got a
# capillary from another bonder at 87 % of its life, past its warning level.
USED_AT_MOUNT = {"WB-03": 52_000_000}
SPARE_DURABLES = [("PC-5532-01", "probe_card", 1_000_000, 90),
                  ("CAP-SPARE-01", "capillary", 60_000_000, 85)]


def _durable_code(prefix: str, tool: str, n: int) -> str:
    return f"{prefix}-{tool}-{n:02d}"


# --- reason codes ----------------------------------------------------------------------

# What customers read of each code's rejects and scrap, by the code's prefix.
CUSTOMER_CATEGORIES = {"SAW": "assembly", "DA": "assembly", "WB": "assembly",
                       "MOLD": "assembly", "PLATE": "assembly", "SING": "assembly",
                       "LEAD": "assembly", "MARK": "visual", "OPT": "visual",
                       "PKG": "visual", "FT": "test", "TNR": "handling", "SCRAP": "other"}


def _category(code: str) -> str:
    if code == "SCRAP-DAMAGE":
        return "handling"
    return CUSTOMER_CATEGORIES.get(code.split("-")[0], "other")


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
    ("HOLD-SPC", "hold", "Process out of statistical control", "过程统计失控"),
    ("HOLD-MSL", "hold", "Moisture floor life exceeded", "湿敏车间寿命超期"),
    # Scrap in a disposition.
    ("SCRAP-YIELD", "scrap", "Scrapped for low yield", "低良率报废"),
    ("SCRAP-DAMAGE", "scrap", "Scrapped for handling damage", "搬运损伤报废"),
    ("SCRAP-MRB", "scrap", "Scrapped by material review board decision", "MRB 判定报废"),
    ("SCRAP-ENG", "scrap", "Engineering samples consumed", "工程样品报废"),
    # Why a tool went down (SEMI E10 down states).
    ("DT-PM", "downtime", "Preventive maintenance", "预防性维护"),
    ("DT-ALARM", "downtime", "Machine alarm or breakdown", "设备报警或故障"),
    ("DT-SETUP", "downtime", "Conversion or setup", "换型或调机"),
    ("DT-MATL", "downtime", "Waiting for material or consumable", "等待物料或耗材"),
    ("DT-ENG", "downtime", "Engineering trial or qualification", "工程试验或认证"),
]

# --- material lots ---------------------------------------------------------------------

# (code, material type, description, days until expiry from loading; negative = expired)
MATERIAL_LOTS = [
    ("EPX-2611-001", "epoxy", "Ag-filled conductive die-attach epoxy, 5 cc syringe", 150),
    ("EPX-2611-002", "epoxy", "Ag-filled conductive die-attach epoxy, 5 cc syringe", 180),
    ("EPX-2609-011", "epoxy", "Ag-filled conductive die-attach epoxy, 5 cc syringe", -3),
    ("EPX-2612-004", "epoxy", "Ag-filled conductive die-attach epoxy, 5 cc syringe, frozen "
     "at -40 C", 170),
    ("AUW-2610-014", "wire", "Au bonding wire 4N, 0.8 mil (20 um), 1000 m spool", 540),
    ("AUW-2611-002", "wire", "Au bonding wire 4N, 0.8 mil (20 um), 1000 m spool", 600),
    ("CUW-2611-003", "wire", "Pd-coated Cu bonding wire, 0.8 mil (20 um), 1000 m spool", 180),
    ("CUW-2611-004", "wire", "Pd-coated Cu bonding wire, 0.8 mil (20 um), 1000 m spool", 200),
    ("EMC-2611-007", "mold_compound", "Green epoxy mold compound, low stress, 14 mm tablet",
     90),
    ("EMC-2611-008", "mold_compound", "Green epoxy mold compound, low stress, 14 mm tablet",
     120),
    ("EMCL-2612-001", "mold_compound", "Green epoxy mold compound, ultra-low stress, low "
     "alpha, 14 mm tablet (new compound under change)", 150),
    ("LF-Q5532-2610-021", "leadframe", "QFN-32 5x5 bare Cu leadframe strip", 330),
    ("LF-Q3316-2611-005", "leadframe", "QFN-16 3x3 bare Cu leadframe strip", 365),
    ("LF-Q4424-2611-009", "leadframe", "QFN-24 4x4 bare Cu leadframe strip", 365),
    ("LF-S08-2610-033", "leadframe", "SOP-8 Cu leadframe strip, Ag spot-plated", 300),
    ("LF-S16-2611-012", "leadframe", "SOP-16 Cu leadframe strip, Ag spot-plated", 365),
]
# Material lot code prefix -> the supplier part number on its label.
PART_NUMBERS = {
    "EPX-": "EPX-AG8200", "AUW-": "AU-0.8MIL", "CUW-": "CU-PD-0.8MIL", "EMC-": "EMC-G700-HF",
    "EMCL-": "EMC-G760-LS",
    "LF-Q5532": "LF-QFN32-CU-A", "LF-Q3316": "LF-QFN16-CU-A", "LF-Q4424": "LF-QFN24-CU-A",
    "LF-S08": "LF-SOP8-AG-A", "LF-S16": "LF-SOP16-AG-A",
}
# Time-limited material lots: (thaw minutes, work life hours). The frozen syringe is still
# in the freezer at the end of the history; the history's track-ins use the others.
TIME_LIMITED = {"EPX-2612-004": (60, 48.0)}


def _part_number(code: str) -> str:
    return next(part for prefix, part in PART_NUMBERS.items() if code.startswith(prefix))


def _bom_items(product: str) -> list[dict[str, Any]]:
    """Revision A of a product's BOM: its leadframe, the plant's epoxy and mold compound,
    and its bond wire (Au or Cu, LOT_MIX)."""
    wire = _part_number(LOT_MIX[product][2])
    return [
        {"step": "DA", "material": "epoxy", "part_numbers": [_part_number("EPX-")],
         "qty_per_unit": 0.002},
        {"step": "DA", "material": "leadframe",
         "part_numbers": [_part_number(LEADFRAMES[product])], "qty_per_unit": 1},
        {"step": "WB", "material": "wire", "part_numbers": [wire]},
        {"step": "MOLD", "material": "mold_compound",
         "part_numbers": [_part_number("EMC-")]},
    ]


# --- users -----------------------------------------------------------------------------

# Demo logins, documented in docs/demo.md. Change them before any real use.
DEMO_USERS: list[dict[str, Any]] = [
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
    PARTNER_USER,
]


def _load(schema: Schema, data: dict[str, Any], what: str) -> dict[str, Any]:
    """Validate one record through an API input schema (InvalidInput naming it if wrong)."""
    try:
        return schema.load(data)
    except ValidationError as exc:
        raise InvalidInput(_l("Invalid demo %(what)s.", what=what),
                           fields={what: [str(exc.messages)]}) from None


def _reason_places(code: str, kind: str) -> dict[str, list[str]]:
    """Where a demo reject reason applies: the final-test failures at every test step, the
    others at the steps whose work (STEP_WORK) produces them. Hold and scrap codes apply
    everywhere."""
    if kind != "reject":
        return {}
    if code.startswith("FT-"):
        return {"step_kinds": ["test"]}
    return {"steps": [step for step, work in STEP_WORK.items()
                      if code in work[3] and step not in FT_STEPS]}


# Uses each unit adds to the durables mounted on the step's tool (route_step
# touchdowns_per_unit): a bond wire is a capillary touchdown, so wire bond counts the wires of
# the route's largest package; the other steps one cut, shot or insertion per unit.
TOUCHDOWNS = {(QFN_ROUTE, "WB"): 32, (SOP_ROUTE, "WB"): 16, (SOP_RT_ROUTE, "WB"): 16}


def _ideal_uph(route: str, step: str) -> float:
    """A step's ideal rate (OEE performance): a full lot (25 wafers) of the route's product
    with the most dies per wafer in the step's shortest process time."""
    gross = max(LOT_MIX[p["code"]][1] for p in PRODUCTS if p["route"] == route)
    return float(round(gross * 25 / STEP_WORK[step][0], -2))


def _validated(now: datetime) -> dict[str, list[dict[str, Any]]]:
    """Every master-data record, loaded through its input schema before anything is
    created, so invalid demo data changes nothing. Expiry dates count from `now`."""
    routes = [{"code": code, "name": name,
               "steps": [{"code": step, "name": STEPS[step][0], "name_zh": STEP_NAMES_ZH[step],
                          "kind": STEPS[step][1],
                          "equipment_kind": STEPS[step][2], "min_yield": STEPS[step][3],
                          "materials": STEPS[step][4], "ideal_uph": _ideal_uph(code, step),
                          "touchdowns_per_unit": TOUCHDOWNS.get((code, step), 1),
                          "moisture_start": step == MOISTURE_START_STEP,
                          "bake": BAKE_RECIPE if step == "BAKE" else None}
                         for step in steps]}
              for code, name, steps in ROUTES]
    qualifications = [
        {"product": product,
         "data": _load(QualificationIn(), {
             "standard": "AEC-Q100", "grade": grade, "report": QUALIFICATIONS[product],
             "bom_revision": "A",
             "tests": [{"test": test, "sample_size": size, "lots": lots, "fails": 0,
                        "preconditioned": pc} for test, size, lots, pc in AEC_Q100_TESTS]},
             f"qualification {product}")}
        for product, grade in ((p["code"], p["aec_grade"]) for p in PRODUCTS)
        if product in QUALIFICATIONS]
    return {
        "customers": [_load(CustomerIn(), c, f"customer {c['code']}") for c in CUSTOMERS],
        "routes": [_load(RouteIn(), r, f"route {r['code']}") for r in routes],
        "products": [_load(ProductIn(), p, f"product {p['code']}") for p in PRODUCTS],
        "qualifications": qualifications,
        "equipment": [_load(EquipmentIn(), {"code": code, "kind": kind, "name": name,
                                            "state": state,
                                            "capacity": CAPACITY.get(code, (1, None))[0],
                                            "unit_capacity": CAPACITY.get(code, (1, None))[1]},
                            f"equipment {code}")
                      for code, kind, name, state in EQUIPMENT],
        "reason_codes": [_load(ReasonCodeIn(), {"code": code, "kind": kind,
                                                "description": text, "description_zh": zh,
                                                "customer_category": _category(code),
                                                **_reason_places(code, kind)},
                               f"reason code {code}")
                         for code, kind, text, zh in REASON_CODES],
        "material_lots": [_load(MaterialLotIn(), {
            "code": code, "material": material, "description": text,
            "expires_at": (now + timedelta(days=days)).isoformat(),
            "part_number": _part_number(code),
            **({"thaw_minutes": TIME_LIMITED[code][0],
                "work_life_hours": TIME_LIMITED[code][1]} if code in TIME_LIMITED else {})},
            f"material lot {code}")
            for code, material, text, days in MATERIAL_LOTS],
        "durables": [_load(DurableIn(), {"code": _durable_code(prefix, code, 1),
                                         "kind": kind, "life_limit": limit,
                                         "warn_at_pct": warn,
                                         "used": USED_AT_MOUNT.get(code, 0)},
                           f"durable {prefix} {code}")
                     | {"equipment": code}
                     for code, tool_kind, _name, _state in EQUIPMENT
                     for kind, prefix, limit, warn in DURABLES_BY_TOOL_KIND.get(tool_kind, [])]
        + [_load(DurableIn(), {"code": code, "kind": kind, "life_limit": limit,
                               "warn_at_pct": warn}, f"durable {code}") | {"equipment": None}
           for code, kind, limit, warn in SPARE_DURABLES],
        "boms": [{"product": p["code"],
                  "data": _load(BomIn(), {"revision": "A", "items": _bom_items(p["code"])},
                                f"BOM {p['code']}")} for p in PRODUCTS],
    }


def _create_master_data(session: Session, data: dict[str, list[dict[str, Any]]]) -> None:
    for customer in data["customers"]:
        catalog.create_customer(session, ACTOR, customer)
    for route in data["routes"]:
        catalog.create_route(session, ACTOR, route)
    products = {p["code"]: catalog.create_product(session, ACTOR, p) for p in data["products"]}
    for equipment in data["equipment"]:
        catalog.create_equipment(session, ACTOR, equipment)
    for durable in data["durables"]:
        tool = durable.pop("equipment")
        catalog.create_durable(session, ACTOR, durable)
        if tool is not None:
            catalog.mount_durable(session, ACTOR, catalog.get_equipment(session, tool),
                                  durable["code"])
    for reason in data["reason_codes"]:
        catalog.create_reason_code(session, ACTOR, reason)
    for lot in data["material_lots"]:
        catalog.create_material_lot(session, ACTOR, lot)
    for bom in data["boms"]:
        catalog.create_bom(session, ACTOR, products[bom["product"]], bom["data"])
    # Qualified at the BOM revision the lots are built on.
    for qual in data["qualifications"]:
        catalog.add_qualification(session, ACTOR, products[qual["product"]], qual["data"])


# Demo users who read the interface in Simplified Chinese (the others follow the browser).
DEMO_LOCALES = {"op2": "zh_CN", "qa2": "zh_CN"}


def _person(session: Session, username: str) -> User:
    """A demo user: the lots' moves, test imports and shipments are theirs."""
    return session.scalars(select(User).where(User.username == username)).one()


def _create_users(session: Session) -> None:
    for user in DEMO_USERS:
        created = auth_services.create_user(session, ACTOR, **user)
        created.locale = DEMO_LOCALES.get(user["username"])


# --- lots with a 30-day history ---------------------------------------------------------

HISTORY = timedelta(days=30)
# The history stops a little before the load: no record may lie in the future.
HISTORY_END = timedelta(minutes=10)
LOT_SEED = 26_1122

# Product -> (lots received in the month, gross dies per 200 mm wafer, bonding wire lots).
LOT_MIX: dict[str, tuple[int, int, str]] = {
    "GD-5532": (48, 3400, "AUW-"),
    "LIN-3316": (38, 11800, "CUW-"),
    "BM-4424": (10, 4800, "CUW-"),
    "CS-0850": (60, 9500, "AUW-"),
    "FC-1600": (56, 6800, "CUW-"),
}
LEADFRAMES = {"GD-5532": "LF-Q5532-2610-021", "LIN-3316": "LF-Q3316-2611-005",
              "BM-4424": "LF-Q4424-2611-009", "CS-0850": "LF-S08-2610-033",
              "FC-1600": "LF-S16-2611-012"}
# A product still in qualification loses more at final test.
FT_LOSS_FACTOR = {"BM-4424": 1.6}
FT_STEPS = ("FT-R", "FT-H", "FT-C")

# Step -> (process hours from, to; median loss as a fraction of the units in; reject codes,
# the most frequent first).
STEP_WORK: dict[str, tuple[float, float, float, tuple[str, ...]]] = {
    "IQC": (0.5, 1.0, 0.0, ()),
    "BG": (1.0, 2.0, 0.0003, ("SAW-CRACK",)),
    "MOUNT": (0.5, 1.0, 0.0, ()),
    "SAW": (1.0, 2.0, 0.0015, ("SAW-CHIP", "SAW-CRACK")),
    "OPT2": (0.75, 1.5, 0.001, ("SAW-CHIP", "OPT-SCRATCH", "OPT-CONTAM")),
    "DA": (2.0, 3.5, 0.0008, ("DA-VOID", "DA-TILT", "DA-BLEED")),
    "PLASMA": (0.5, 1.0, 0.0, ()),
    "WB": (3.0, 6.0, 0.001, ("WB-NSOP", "WB-BALL", "WB-NSOL", "WB-BROKEN")),
    "OPT3": (1.0, 2.0, 0.0005, ("WB-BROKEN", "OPT-CONTAM", "WB-BALL")),
    "MOLD": (1.5, 3.0, 0.0006, ("MOLD-VOID", "MOLD-INCOMPLETE", "MOLD-WIRE-SWEEP")),
    "PMC": (3.0, 5.0, 0.0, ()),
    "DEFLASH": (0.5, 1.0, 0.0002, ("PKG-CRACK",)),
    "PLATE": (1.0, 2.0, 0.0002, ("PLATE-THICK",)),
    "MARK": (0.75, 1.5, 0.0002, ("MARK-ILLEG",)),
    "STEPCUT": (1.0, 2.0, 0.0002, ("SING-BURR",)),
    "SING": (1.0, 2.0, 0.0005, ("SING-BURR", "PKG-CRACK")),
    "TRIM_FORM": (1.0, 2.0, 0.0005, ("LEAD-COPLANARITY", "PKG-CRACK")),
    "FVI": (1.0, 2.0, 0.001, ("PKG-CRACK", "MARK-ILLEG", "OPT-CONTAM")),
    "FT-R": (2.0, 4.0, 0.015, ("FT-OPEN-SHORT", "FT-PARAM", "FT-FUNC", "FT-LEAK", "FT-PAT")),
    "FT-H": (2.0, 4.0, 0.008, ("FT-PARAM", "FT-LEAK", "FT-OPEN-SHORT", "FT-FUNC", "FT-PAT")),
    "FT-C": (2.0, 4.0, 0.005, ("FT-PARAM", "FT-FUNC", "FT-OPEN-SHORT", "FT-LEAK", "FT-PAT")),
    "QA": (0.5, 1.0, 0.0, ()),
    "BAKE": (9.5, 11.0, 0.0, ()),
    "TNR": (1.5, 3.0, 0.00005, ("TNR-ORIENT",)),
    "DRYPACK": (0.5, 1.0, 0.0, ()),
}

# Lots split before die attach (to run on both die bonders) and before final test (to run
# on both testers); of the latter, some are merged again at QA once all parts are there.
SPLIT_BEFORE_DA = 9
SPLIT_BEFORE_FT = 8
MERGED_AGAIN = 5
MERGE_STEP = "QA"
# Completed lots and lots held back in the wafer bank (queued at BG), per route.
COMPLETED_SHARE = 0.14
BANK_LOTS = 8
# A lot's plan leaves this factor of its time for waiting on busy machines.
CONTENTION = 1.8
# How many times the bare queue and process time a lot takes through the line, by priority
# (rush, hot, normal and low alike).
STRETCH = {1: (1.3, 1.8), 2: (1.5, 2.5), 3: (1.8, 4.0)}
QUEUE_MEDIAN_HOURS = 1.2
# Lots that miss a step's minimum yield are held automatically (mes.quality); such
# excursions happen in the last days only, so their holds still wait for QA's review.
EXCURSIONS_WITHIN = timedelta(days=4)
EXCURSION_CHANCE = 0.015
# Fab lots ordered when they were shipped to the plant; the others wait in the wafer bank
# for an order.
ORDERED_AT_RECEIPT = 0.6
# Committed cycle time in days by priority (1 rush ... 4 low).
COMMIT_DAYS = {1: (7, 10), 2: (10, 14), 3: (14, 24), 4: (21, 30)}
DAY_SHIFT = range(8, 20)  # local hours of op1's shift; op2 works nights


def _hours(value: float) -> timedelta:
    return timedelta(seconds=round(value * 3600))


@dataclass(eq=False)
class _Plan:
    """What the history does with one lot: where it stands at the end, and when."""

    product: str
    customer: str
    steps: tuple[StepInfo, ...]
    # The step (seq) it stops at, queued there or, if `running`, tracked in; a seq past
    # the last step means completed.
    target: int
    running: bool
    arrive_by: datetime  # when it should reach its target (completed lots: finish)
    release: datetime  # when it may leave the wafer bank (the queue at BG)
    priority: int = 3
    receive_by: datetime | None = None  # latest receipt that still meets `arrive_by`
    start_by: datetime | None = None  # running lots: earliest track-in at the target
    final_hours: float = 0.0  # running lots: the process time at the target
    pace: float = 1.0  # queue times are this many times the usual
    wafers: int = 0
    split_step: str | None = None
    children: list[_Plan] = field(default_factory=list)
    family: list[_Plan] | None = None  # split before FT, merged again at MERGE_STEP
    lot: Lot | None = None
    ready_at: datetime | None = None
    waiting_to_merge: bool = False


class _History:
    """A discrete-event simulation of the plant's last 30 days that makes every move through
    the floor services, in time order, each at its simulated time: a lot waits in a queue,
    then takes a free machine of the step's kind, runs, and is tracked out with rejects."""

    def __init__(self, session: Session, now: datetime) -> None:
        self.session = session
        self.rng = random.Random(LOT_SEED)
        self.end = (now - HISTORY_END).replace(microsecond=0)
        self.start = self.end - HISTORY + HISTORY_END
        self.zone = ZoneInfo(current_app.config["PLANT_TIMEZONE"] if has_app_context()
                             else CONFIG_DEFAULTS["PLANT_TIMEZONE"])
        self.events: list[tuple[datetime, int, Callable[[datetime, Any], None], Any]] = []
        self.counter = itertools.count()
        self.fab_serial = itertools.count(self.rng.randint(100, 400))
        self.tools: dict[str, list[str]] = {}
        for code, kind, _name, state in EQUIPMENT:
            if state in AVAILABLE_EQUIPMENT_STATES:
                self.tools.setdefault(kind, []).append(code)
        self.busy_until = {code: self.start for codes in self.tools.values()
                           for code in codes}
        self.waiting: dict[str, list[_Plan]] = {kind: [] for kind in self.tools}
        # Only lots that are still good at the time of loading: the expired one never is.
        self.materials: dict[str, list[MaterialLot]] = {}
        self.planner = _person(session, "planner")
        self.operators = _person(session, "op1"), _person(session, "op2")
        self.tests = _TestHistory(session)
        # The mold compound change (load_demo_change): when it was recorded, and the
        # products that have a lot on its revision.
        self.change_at: datetime | None = None
        self.change_built: set[str] = set()
        for m in session.scalars(select(MaterialLot).order_by(MaterialLot.code)):
            if (m.expires_at is None or m.expires_at > now) and m.code not in TIME_LIMITED:
                self.materials.setdefault(m.material, []).append(m)
        # The durables on each tool as the history wears them: (kind, prefix, limit, warning
        # level) -> [number of the part mounted, uses taken of it].
        self.wear: dict[str, dict[tuple[str, str, int, int], list[int]]] = {
            code: {spec: [1, USED_AT_MOUNT.get(code, 0)]
                   for spec in DURABLES_BY_TOOL_KIND.get(kind, [])}
            for code, kind, _name, _state in EQUIPMENT}

    # --- the plan ---------------------------------------------------------------------

    def _between(self, low: datetime, high: datetime) -> datetime:
        """A time between `low` and `high`, in whole seconds like every time here."""
        return low + timedelta(seconds=self.rng.randint(0, int((high - low).total_seconds())))

    def _queue_hours(self) -> float:
        return min(max(self.rng.lognormvariate(math.log(QUEUE_MEDIAN_HOURS), 0.8), 0.15),
                   14.0)

    def _process_hours(self, code: str, wafers: int) -> float:
        low, high, _loss, _codes = STEP_WORK[code]
        # Bigger lots take longer, within the step's usual range.
        share = 0.5 * self.rng.random() + 0.5 * min(wafers, 25) / 25
        return low + (high - low) * share

    def _pace(self, plan: _Plan, first: int, last: int, stretch: float) -> float:
        """Release the lot early enough to flow from step `first` through step `last` (seqs)
        by `plan.arrive_by` taking `stretch` times the usual time, and lengthen its queues
        to match, keeping a margin for busy machines."""
        steps = plan.steps[first - 1:last]
        queues = len(steps) * QUEUE_MEDIAN_HOURS * math.exp(0.8 ** 2 / 2)
        work = sum((STEP_WORK[s.code][0] + STEP_WORK[s.code][1]) / 2 for s in steps)
        budget = stretch * (queues + work)
        plan.release = plan.arrive_by - _hours(budget)
        plan.pace = max(1.0, (budget / CONTENTION - work) / queues) if queues else 1.0
        return budget

    def _plan_lot(self, product: str, steps: tuple[StepInfo, ...], target: int,
                  running: bool) -> _Plan:
        rng, end = self.rng, self.end
        last = len(steps)
        priority = rng.choices((1, 2, 3, 4), weights=(4, 14, 67, 15))[0]
        customer = next(p["customer"] for p in PRODUCTS if p["code"] == product)
        plan = _Plan(product=product, customer=customer, steps=steps, target=target,
                     running=running, arrive_by=end, release=end, priority=priority)
        # Urgent lots wait less at every step.
        stretch = rng.uniform(*STRETCH[min(priority, 3)])
        if target > last:
            # Finished at any time after the first lots could have gone all the way.
            budget = _hours(self._pace(plan, 2, last, min(stretch, 2.2)))
            earliest = self.start + budget + timedelta(hours=12)
            plan.arrive_by = self._between(earliest, end - timedelta(hours=1))
            plan.release = plan.arrive_by - budget
        elif running:
            plan.final_hours = self._process_hours(steps[target - 1].code, 25)
            plan.start_by = end - _hours(plan.final_hours * rng.uniform(0.15, 0.85))
            plan.arrive_by = plan.start_by - _hours(rng.uniform(0.2, 2.0))
            self._pace(plan, 2, target - 1, stretch)
        elif target == 2:
            # Held back in the wafer bank until the planner releases it to the line.
            plan.arrive_by = self._between(self.start + _hours(4), end - _hours(2))
            plan.priority = max(priority, 3)
        else:
            plan.arrive_by = end - _hours(min(max(rng.lognormvariate(math.log(4), 1.0), 0.25),
                                              30))
            self._pace(plan, 2, target - 1, stretch)
        iqc = _hours(0 if target == 1 else 3)
        plan.receive_by = min(plan.release, plan.arrive_by) - iqc
        return plan

    def plan(self) -> list[list[_Plan]]:
        """Every received lot's plan, grouped by fab lot; splits and merges marked."""
        rng = self.rng
        routes = {code: route_step_infos(self.session, get_route(self.session, code))
                  for code, _name, _steps in ROUTES}
        plans: list[_Plan] = []
        for route_code, steps in routes.items():
            products = [p["code"] for p in PRODUCTS if p["route"] == route_code]
            lots = [code for code in products for _ in range(LOT_MIX[code][0])]
            rng.shuffle(lots)
            last = len(steps)
            completed = round(len(lots) * COMPLETED_SHARE)
            # Every step holds WIP: two lots each, more in the bank (fewer on a route of
            # one product), the rest anywhere.
            bank = BANK_LOTS if len(products) > 1 else BANK_LOTS // 2
            targets = [(last + 1, False)] * completed
            targets += [(seq, rng.random() < 0.3) for seq in range(1, last + 1)
                        for _ in range(2)]
            targets += [(2, False)] * bank
            targets += [(rng.randint(3, last), rng.random() < 0.2)
                        for _ in range(len(lots) - len(targets))]
            rng.shuffle(targets)
            plans += [self._plan_lot(product, steps, target, running)
                      for product, (target, running) in zip(lots, targets, strict=True)]
        fab_lots = self._fab_lots(plans)
        self._mark_splits(plans)
        return fab_lots

    def _fab_lots(self, plans: list[_Plan]) -> list[list[_Plan]]:
        """Group lots of a product into fab lots of 25 wafers, each received at once."""
        rng = self.rng
        groups: list[list[_Plan]] = []
        for product in LOT_MIX:
            mine = sorted((p for p in plans if p.product == product),
                          key=lambda p: p.receive_by or self.end)
            while mine:
                size = min(rng.choice((1, 2, 2, 3, 3)), len(mine))
                group, mine = mine[:size], mine[size:]
                counts = [[25], [rng.randint(9, 16)], [rng.randint(6, 10), rng.randint(6, 10)]]
                wafers = counts[size - 1]
                for plan, count in zip(group, [*wafers[:size - 1], 25 - sum(wafers[:size - 1])],
                                       strict=True):
                    plan.wafers = count
                groups.append(group)
        return groups

    def _mark_splits(self, plans: list[_Plan]) -> None:
        rng = self.rng

        def seq(plan: _Plan, code: str) -> int:
            return next(s.seq for s in plan.steps if s.code == code)

        big = [p for p in plans if p.target > seq(p, "DA") and p.wafers >= 10]
        before_da = rng.sample(big, SPLIT_BEFORE_DA)
        for plan in before_da:
            plan.split_step = "DA"
            for _ in range(2 if plan.wafers >= 20 else 1):
                target = plan.target if rng.random() < 0.5 else rng.randint(seq(plan, "DA"),
                                                                             plan.target)
                plan.children.append(self._child(plan, target))
        chosen = set(map(id, before_da))
        merging = [p for p in plans if p.target >= seq(p, MERGE_STEP) and id(p) not in chosen]
        apart = [p for p in plans if seq(p, "FT-R") < p.target < seq(p, MERGE_STEP)
                 and id(p) not in chosen]
        for plan in rng.sample(merging, MERGED_AGAIN) + rng.sample(apart, SPLIT_BEFORE_FT
                                                                    - MERGED_AGAIN):
            plan.split_step = "FT-R"
            if plan.target >= seq(plan, MERGE_STEP):
                plan.children.append(self._child(plan, plan.target))
                plan.family = [plan, *plan.children]
                for child in plan.children:
                    child.family = plan.family
            else:
                plan.children.append(self._child(plan, rng.randint(seq(plan, "FT-R"),
                                                                   plan.target)))

    def _child(self, parent: _Plan, target: int) -> _Plan:
        return _Plan(product=parent.product, customer=parent.customer, steps=parent.steps,
                     target=target, running=False, arrive_by=parent.arrive_by,
                     release=parent.release, priority=parent.priority, wafers=parent.wafers)

    # --- receiving --------------------------------------------------------------------

    def _receipt_time(self, group: list[_Plan]) -> datetime:
        latest = min(p.receive_by or self.end for p in group)
        if any(p.target == 1 for p in group):
            bank = 0.0
        elif min(p.priority for p in group) <= 2:
            bank = self.rng.uniform(1, 12)
        else:
            span = self.rng.choices(((4, 72), (72, 240), (240, 480)), weights=(5, 3, 2))[0]
            bank = self.rng.uniform(*span)
        at = latest - _hours(bank)
        earliest = self.start + _hours(0.5)
        if at < earliest:
            at = self._between(earliest, max(latest, earliest))
        return min(at, self.end - _hours(0.2))

    def _receive_fab_lot(self, at: datetime, group: list[_Plan]) -> None:
        """The fab lot arrives: the planner receives its lots one after the other."""
        rng = self.rng
        year, week, _day = (at - timedelta(days=rng.randint(10, 25))).isocalendar()
        fab_lot = f"WF{year % 100:02d}{week:02d}{next(self.fab_serial):03d}.1"
        # The due date counts from the receipt, or, for wafers the customer orders later,
        # from the planned release to the line.
        ordered_at_receipt = rng.random() < ORDERED_AT_RECEIPT
        first_wafer = 1
        for plan in group:
            ordered = at if ordered_at_receipt else min(max(at, plan.release), self.end)
            self._at(at, self._receive, (plan, fab_lot, first_wafer, ordered))
            first_wafer += plan.wafers
            at += _hours(rng.uniform(0.03, 0.08))

    def _receive(self, at: datetime, receipt: tuple[_Plan, str, int, datetime]) -> None:
        plan, fab_lot, first_wafer, ordered = receipt
        rng = self.rng
        gross = LOT_MIX[plan.product][1]
        wafers = [{"wafer_id": f"{first_wafer + i:02d}",
                   "die_qty": round(gross * rng.uniform(0.90, 0.98))}
                  for i in range(plan.wafers)]
        due = ordered + timedelta(days=rng.randint(*COMMIT_DAYS[plan.priority]))
        data = _load(LotIn(), {
            "product": plan.product, "customer": plan.customer, "fab_lot": fab_lot,
            "quantity": sum(w["die_qty"] for w in wafers), "wafers": wafers,
            "priority": plan.priority, "due_date": due.date().isoformat(),
            **self._change_build(at, plan)},
            f"lot of fab lot {fab_lot}")
        with simulated_time(at):
            plan.lot = floor.receive_lot(self.session, self.planner, data)
        self._arrive(at, plan)

    def _change_build(self, at: datetime, plan: _Plan) -> dict[str, Any]:
        """The first lot of each changed product received after the mold compound change
        that is planned to complete is built on the change's revision (a qualification
        build: the revision is held back until its requalification passes)."""
        if (self.change_at is None or at < self.change_at or plan.product not in CHANGE_BUILDS
                or plan.product in self.change_built or plan.target <= len(plan.steps)
                or plan.split_step is not None or plan.family):
            return {}
        self.change_built.add(plan.product)
        return {"bom_revision": CHANGE["bom_revision"]}

    def _change(self, at: datetime, _arg: Any) -> None:
        with simulated_time(at):
            load_demo_change(self.session, at)
        self.change_at = at

    def _approve_pcn(self, at: datetime, customer: str) -> None:
        with simulated_time(at):
            approve_demo_pcn(self.session, customer)

    # --- moving lots ------------------------------------------------------------------

    def _at(self, at: datetime, action: Callable[[datetime, Any], None], arg: Any) -> None:
        heapq.heappush(self.events, (at, next(self.counter), action, arg))

    def _operator(self, at: datetime) -> User:
        return self.operators[0 if at.astimezone(self.zone).hour in DAY_SHIFT else 1]

    def _arrive(self, at: datetime, plan: _Plan) -> None:
        """The lot has just come to its step (queued): decide what happens to it next."""
        lot = plan.lot
        assert lot is not None
        if lot.state != LotState.QUEUED or lot.open_holds:
            return
        if lot.step_seq >= plan.target and not (lot.step_seq == plan.target and plan.running):
            return
        if lot.step_code == plan.split_step:
            self._at(at + _hours(self.rng.uniform(0.1, 0.6)), self._split, plan)
            return
        if plan.family and lot.step_code == MERGE_STEP:
            plan.waiting_to_merge = True
            if all(p.waiting_to_merge for p in plan.family):
                self._at(at + _hours(self.rng.uniform(0.2, 0.7)), self._merge, plan.family)
            return
        ready = at + _hours(self._queue_hours() * (plan.pace if lot.step_seq > 1 else 1.0))
        if lot.step_seq == 2:
            ready = max(ready, plan.release)
        if plan.start_by is not None and lot.step_seq == plan.target:
            ready = max(ready, plan.start_by)
        self._at(ready, self._ready, plan)

    def _ready(self, at: datetime, plan: _Plan) -> None:
        assert plan.lot is not None
        plan.ready_at = at
        kind = plan.steps[plan.lot.step_seq - 1].equipment_kind or ""
        self.waiting[kind].append(plan)
        self._dispatch(at, kind)

    def _dispatch(self, at: datetime, kind: str) -> None:
        """Start the most urgent waiting lot on a free machine, if there is one; the next
        lot follows a few minutes later."""
        waiting = self.waiting[kind]
        free = [code for code in self.tools[kind] if self.busy_until[code] <= at]
        if not waiting or not free:
            return
        plan = min(waiting, key=lambda p: (p.priority, p.ready_at))
        waiting.remove(plan)
        lot = plan.lot
        assert lot is not None
        step = plan.steps[lot.step_seq - 1]
        tool = self.rng.choice(free)
        places, units = CAPACITY.get(tool, (1, None))
        if places > 1:
            self._batch(at, tool, plan, places, units)
            self._at(self.busy_until[tool], self._dispatch, kind)
            if waiting and len(free) > 1:
                self._at(at + _hours(self.rng.uniform(0.02, 0.07)), self._dispatch, kind)
            return
        self._wear(at, tool, lot.quantity * step.touchdowns_per_unit)
        # Without autoflush: what the move's services look up (equipment, material lots,
        # reason codes, hold rules) is in the database already and their own flushes write
        # the rest; a flush before every look-up made the whole load half as fast.
        with simulated_time(at), self.session.no_autoflush:
            floor.track_in(self.session, self._operator(at), lot, step=step.code,
                           equipment=tool, materials=self._materials(plan, step))
        hours = plan.final_hours if plan.start_by is not None and \
            lot.step_seq == plan.target else self._process_hours(step.code, plan.wafers)
        done = at + _hours(hours)
        self.busy_until[tool] = done + _hours(self.rng.uniform(0.08, 0.33))
        self._at(done, self._finish, plan)
        self._at(self.busy_until[tool], self._dispatch, kind)
        if len(waiting) > 0 and len(free) > 1:
            self._at(at + _hours(self.rng.uniform(0.02, 0.07)), self._dispatch, kind)

    def _batch(self, at: datetime, tool: str, plan: _Plan, places: int,
               units: int | None) -> None:
        """Load a batch tool: the most urgent waiting lot and, up to the tool's places (and
        units), the next waiting lots at the same step, tracked in together. The batch runs
        for the longest of its lots' process times; each lot is tracked out on its own."""
        assert plan.lot is not None
        step = plan.steps[plan.lot.step_seq - 1]
        waiting = self.waiting[step.equipment_kind or ""]
        batch, total = [plan], plan.lot.quantity
        for other in sorted(waiting, key=lambda p: (p.priority, p.ready_at)):
            assert other.lot is not None
            if len(batch) == places:
                break
            if other.lot.step_code == step.code and (
                    units is None or total + other.lot.quantity <= units):
                batch.append(other)
                total += other.lot.quantity
        for other in batch[1:]:
            waiting.remove(other)
        with simulated_time(at), self.session.no_autoflush:
            floor.batch_track_in(self.session, self._operator(at), tool, step=step.code,
                                 lots=[p.lot.lot_no for p in batch if p.lot is not None])
        hours = max(self._process_hours(step.code, p.wafers) for p in batch)
        longest = hours
        for member in batch:
            assert member.lot is not None
            ends = member.final_hours if member.start_by is not None and \
                member.lot.step_seq == member.target else hours
            longest = max(longest, ends)
            self._at(at + _hours(ends), self._finish, member)
        self.busy_until[tool] = at + _hours(longest + self.rng.uniform(0.08, 0.33))

    def _wear(self, at: datetime, tool: str, need: int) -> None:
        """Take the lot's uses of the tool's durables, changing a part first (a new one,
        mounted by the technician) when the lot would pass its life limit."""
        for (kind, prefix, limit, warn), part in self.wear[tool].items():
            if part[1] + need > limit:
                part[0] += 1
                part[1] = 0
                with simulated_time(at):
                    catalog.create_durable(self.session, ACTOR, {
                        "code": _durable_code(prefix, tool, part[0]), "kind": kind,
                        "life_limit": limit, "warn_at_pct": warn})
                    catalog.mount_durable(self.session, ACTOR,
                                          catalog.get_equipment(self.session, tool),
                                          _durable_code(prefix, tool, part[0]))
            part[1] += need

    def _materials(self, plan: _Plan, step: StepInfo) -> list[str]:
        chosen = []
        assert plan.lot is not None
        bom = floor.lot_bom(plan.lot)
        allowed = bom.steps.get(step.code, {}) if bom is not None else {}
        for material in step.materials:
            lots = [m for m in self.materials[material]
                    if material not in allowed or m.part_number in allowed[material]]
            if material == "leadframe":
                lots = [m for m in lots if m.code == LEADFRAMES[plan.product]]
            elif material == "wire":
                lots = [m for m in lots if m.code.startswith(LOT_MIX[plan.product][2])]
            chosen.append(self.rng.choice(lots).code)
        return chosen

    def _rejects(self, at: datetime, plan: _Plan, step: StepInfo,
                 qty: int) -> list[dict[str, Any]]:
        """Rejects of one track-out: a step's usual loss keeps its yield above the minimum,
        except for a few excursions in the last days, held for low yield and waiting for
        QA's review at the end of the history."""
        rng = self.rng
        _low, _high, loss, reasons = STEP_WORK[step.code]
        if not reasons:
            return []
        rate = loss * rng.lognormvariate(0, 0.5)
        if step.code in FT_STEPS:
            rate *= FT_LOSS_FACTOR.get(plan.product, 1.0)
        if step.min_yield is not None:
            allowed = (100 - step.min_yield) / 100
            rate = min(rate, 0.8 * allowed)
            if at > self.end - EXCURSIONS_WITHIN and rng.random() < EXCURSION_CHANCE:
                rate = allowed * rng.uniform(1.2, 2.5)
        total = min(round(qty * rate), qty - 1)
        if total <= 0:
            return []
        weights = [rng.random() / (i + 1) for i in range(len(reasons))]
        shares = [int(total * w / sum(weights)) for w in weights[1:]]
        shares.insert(0, total - sum(shares))
        return [{"reason": r, "qty": n} for r, n in zip(reasons, shares, strict=True) if n > 0]

    def _finish(self, at: datetime, plan: _Plan) -> None:
        lot = plan.lot
        assert lot is not None
        step = plan.steps[lot.step_seq - 1]
        code = step.code
        rejects = self._rejects(at, plan, step, lot.quantity)
        good = lot.quantity - sum(r["qty"] for r in rejects)
        if code in FT_STEPS:
            # A test step's track-out is its closed insertion's proposal.
            proposal = self.tests.tested(at, lot, code, self._operator(at))
            good, rejects = proposal["good_qty"], list(proposal["rejects"])
        with simulated_time(at), self.session.no_autoflush:  # as at track-in
            floor.track_out(self.session, self._operator(at), lot, step=code,
                            good_qty=good, rejects=rejects)
            if code == DRY_PACK_STEP and lot.product.msl != "1" and lot.quantity:
                self._dry_pack(at, lot)
        self._arrive(at, plan)

    def _dry_pack(self, at: datetime, lot: Lot) -> None:
        """Seal the lot in its dry bag; one that waited beyond its exposure time since the
        bake is baked again on its reels first (90 °C, dry), as the bake table asks."""
        operator = self._operator(at)
        if moisture.exposure_exceeded(lot, moisture.clock_of(self.session, lot.id), at):
            need = quality.bake_requirement(self.session, lot, REBAKE["temperature_c"],
                                            REBAKE["rh_pct"], at)
            assert need.hours is not None
            quality.record_bake(self.session, operator, lot, hours=need.hours,
                                temperature_c=REBAKE["temperature_c"], rh_pct=REBAKE["rh_pct"])
        quality.moisture_action(self.session, operator, lot, "seal")

    def _split(self, at: datetime, plan: _Plan) -> None:
        lot = plan.lot
        assert lot is not None
        shares = [self.rng.uniform(0.8, 1.2) for _ in range(len(plan.children) + 1)]
        quantities = [max(1, int(lot.quantity * s / sum(shares))) for s in shares]
        quantities[0] = lot.quantity - sum(quantities[1:])
        plan.split_step = None
        with simulated_time(at):
            children = floor.split_lot(self.session, self._operator(at), lot, quantities)
        # Smaller lots run shorter.
        whole = plan.wafers
        for part, qty in zip([plan, *plan.children], quantities, strict=True):
            part.wafers = max(1, round(whole * qty / sum(quantities)))
        for child, child_plan in zip(children, plan.children, strict=True):
            child_plan.lot = child
            self._arrive(at, child_plan)
        self._arrive(at, plan)

    def _merge(self, at: datetime, family: list[_Plan]) -> None:
        with simulated_time(at):
            floor.merge_lots(self.session, self._operator(at),
                             [p.lot for p in family if p.lot is not None])
        for plan in family:
            plan.family = None
        self._arrive(at, family[0])

    def run(self) -> None:
        """Receive every planned lot and move the plant along until the end of the
        history; what would happen later (track-outs, starts) is left undone."""
        for group in self.plan():
            self._at(self._receipt_time(group), self._receive_fab_lot, group)
        self._at(self.start + CHANGE_AFTER, self._change, None)
        self._at(self.start + PCN_APPROVED_AFTER, self._approve_pcn, OEM)
        # Track-out looks its run up by id: keeping the runs referenced (the session holds
        # them weakly) answers that from the identity map instead of a query per move.
        runs: list[StepRun] = []

        def keep(_session: Session, obj: object) -> None:
            if isinstance(obj, StepRun):
                runs.append(obj)

        event.listen(self.session, "pending_to_persistent", keep)
        try:
            while self.events and self.events[0][0] <= self.end:
                at, _n, action, arg = heapq.heappop(self.events)
                action(at, arg)
        finally:
            event.remove(self.session, "pending_to_persistent", keep)


# --- test history ----------------------------------------------------------------------

# Each final test track-out leaves the lot's tester files: a first pass over every unit of
# the lot, and for some lots a retest of its failures. A file holds one PRR per unit and
# PTRs only for the step's PAT tests (and the failing test of a parametric reject): the
# values PAT and the test data pages use, at a size the load can afford for lots of up to
# 275,000 units.
TEST_SEED = 26_1123
# The PAT tests of every final test step: (test number, name, units, mean, sigma, low
# limit, high limit); the spec limits lie a little outside the test limits. Per product the
# means are shifted by its own offsets.
DEMO_TESTS = [
    (1100, "IDDQ", "uA", 12.0, 1.2, 0.0, 40.0),
    (1300, "VREF", "V", 1.2, 0.004, 1.17, 1.23),
]
PAT_TESTS = [num for num, *_rest in DEMO_TESTS]
LEAKAGE_TEST, PARAMETRIC_TEST = 1100, 1300
# Room and cold test temperatures; the hot test runs at the top of the product's AEC-Q100
# grade. Non-automotive products (no grade) are tested at room temperature only: their
# route has no hot or cold insertion.
ROOM_C, COLD_C = 25, -40
HOT_BY_GRADE = {0: 150, 1: 125, 2: 105, 3: 85}
# Leakage (IDDQ) grows with temperature: this much more per degree above room.
LEAKAGE_PER_C = 0.35 / 125
# The released test program of every product at each final test step, and its bins: the
# hard bins the files write, each failing one booked to its reject reason at track-out.
JOB_REV = "3"
PAT_BIN, PAT_REJECT = 9, "FT-PAT"
# (bin, passes, name, reject reason, limited by SBA)
DEMO_BINS = [(1, True, "Good", None, False), (2, False, "Open/short", "FT-OPEN-SHORT", True),
             (3, False, "Leakage", "FT-LEAK", True), (4, False, "Parametric", "FT-PARAM", True),
             (5, False, "Functional", "FT-FUNC", True),
             (6, False, "Functional, other", "FT-FUNC", False),
             (PAT_BIN, False, "PAT outlier", PAT_REJECT, False)]
# Hot insertions fail more parts for leakage, cold ones more for function: a lot's yields
# differ between its insertions. Extra weight of a failing bin at a step (see _fails).
STEP_EXTRA_FAILS: dict[str, dict[int, int]] = {"FT-R": {}, "FT-H": {3: 2}, "FT-C": {5: 2}}
# PAT outliers the tester bins out: this fraction of a lot's units, times 1 to 3.
PAT_OUTLIERS = 0.0002
# In a lot whose failures are retested, these shares of the parametric and functional
# failures pass on retest; the others fail again in the same bin.
RETEST_RECOVERS = {4: 0.4, 5: 0.3}
HANDLERS = {"TST-01": "HDL-01", "TST-02": "HDL-02", "TST-03": "HDL-03"}
# Engineering computes static PAT limits for the first product at FT-R once this many of
# its lots have been tested there (AEC-Q001 needs 6); the program revision released with
# them carries the limit set.
PAT_PRODUCT, PAT_STEP, PAT_AFTER_LOTS, PAT_JOB_REV = "GD-5532", "FT-R", 8, "4"
# The failing bin of the SBA excursion: one the history never used, and SBA does not
# limit, so that only the yield is judged.
EXCURSION_BIN = 6


def ft_temperature(product: Product | dict[str, Any], step: str) -> int:
    """The test temperature (°C) of a product at a final test step."""
    grade = product["aec_grade"] if isinstance(product, dict) else product.aec_grade
    if step == "FT-H":
        # Only automotive products (graded) have a hot insertion on their route.
        assert grade is not None
        return HOT_BY_GRADE[grade]
    return COLD_C if step == "FT-C" else ROOM_C


def _ft_steps(route: str) -> list[str]:
    return [s for s in next(steps for code, _name, steps in ROUTES if code == route)
            if s in FT_STEPS]


def load_demo_test_programs(session: Session) -> None:
    """Release each product's test program, choose its PAT tests and define its bins at
    each final test step of its route, so that every file is checked against them
    (mes.testfloor.programs)."""
    for p in PRODUCTS:
        product = catalog.get_product(session, p["code"])
        for step in _ft_steps(p["route"]):
            programs.release_program(session, ACTOR, product, step=step,
                                     job_name=f"{p['code']}_ft", job_rev=JOB_REV,
                                     temperature_c=ft_temperature(p, step),
                                     part_type=p["code"])
            programs.set_bins(session, ACTOR, product, step=step, bins=[
                {"bin": b, "kind": "hard", "passed": ok, "name": name, "reason": reason,
                 "sba": sba, "pat": b == PAT_BIN}
                for b, ok, name, reason, sba in DEMO_BINS])
            programs.set_pat_tests(session, ACTOR, product, step=step, tests=PAT_TESTS)


@dataclass(frozen=True)
class _Fails:
    """The failing units of a lot's first pass by hard bin, and per bin those that pass
    when the failures are retested (None: no retest)."""

    bins: dict[int, int]
    recovered: dict[int, int] | None


def _fails(i: int, step: str, units: int, loss: float) -> _Fails:
    """The failures of a product's i-th lot at a step of `units` units whose usual loss is
    `loss`. Their shares by bin, the PAT outliers and the retests repeat every six lots, so
    every lot's yield and bins lie within the spread of the lots before it, and SBA, which
    judges against at least six earlier lots, finds nothing to hold during the history."""
    weights = {2: 1 + i % 2, 3: 1 + (i + 1) % 3, 4: 2 + i % 3, 5: 1 + (i % 6 in (1, 4))}
    for b, n in STEP_EXTRA_FAILS[step].items():
        weights[b] += n
    bins = {b: round(units * loss * w / 6) for b, w in weights.items()}
    bins[PAT_BIN] = round(units * PAT_OUTLIERS * (1 + i % 3))
    retest = (i // 3) % 2 == 0
    recovered = ({b: round(bins[b] * share) for b, share in RETEST_RECOVERS.items()}
                 if retest else None)
    return _Fails({b: n for b, n in bins.items() if n}, recovered)


class _TestHistory:
    """Imports the tester files of each final test track-out of the history and closes the
    lot's insertion, and, once enough lots are tested, has the engineer compute static PAT
    limits and release the program revision that carries them."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.rng = random.Random(TEST_SEED)
        self.runs: dict[tuple[str, str], int] = {}
        self.offsets = {p["code"]: k * 0.01 for k, p in enumerate(PRODUCTS)}
        self.pat_done = False
        # (product, step) -> the job revision the tester runs, when not JOB_REV.
        self.job_revs: dict[tuple[str, str], str] = {}
        self.engineer = _person(session, "engineer")
        self.day_operator = _person(session, "op1")

    def stdf(self, lot: Lot, step: str, at: datetime, good: int, fails: dict[int, int], *,
             retest: bool = False) -> bytes:
        """A tester file of `good` passing units and `fails` failing ones by hard bin."""
        rng = self.rng
        product = lot.product.code
        temperature = ft_temperature(lot.product, step)
        shift = self.offsets[product]
        leakage = 1 + LEAKAGE_PER_C * (temperature - ROOM_C)
        centres = [(num, mean * (leakage if num == LEAKAGE_TEST else 1.0) + sigma * shift,
                    sigma) for num, _name, _unit, mean, sigma, _lo, _hi in DEMO_TESTS]
        tests = {num: TestSpec(name, unit, lo, hi, lo - (hi - lo) * 0.05,
                               hi + (hi - lo) * 0.05)
                 for num, name, unit, _mean, _sigma, lo, hi in DEMO_TESTS}
        gauss = rng.gauss
        parts = []
        k = 0
        for b, n in sorted(fails.items()):
            for _ in range(n):
                k += 1
                if b == PAT_BIN:
                    # Well inside the test limits but far from its siblings in VREF: the
                    # program's PAT screen bins it out.
                    results: list[tuple[int, float] | tuple[int, float, int]] = [
                        (num, centre + (9 * sigma if num == PARAMETRIC_TEST else 0.0))
                        for num, centre, sigma in centres]
                elif b == 4:
                    results = [(PARAMETRIC_TEST, 1.25, 0x80)]
                else:
                    results = []
                parts.append(PartSpec(hard_bin=b, soft_bin=b * 10, passed=False,
                                      part_id=str(k), results=results))
        (t1, c1, s1), (t2, c2, s2) = centres
        good_units = [(gauss(c1, s1), gauss(c2, s2)) for _ in range(good)]
        tester = lot.equipment.code if lot.equipment is not None else "TST-01"
        start = int(at.timestamp()) - 3600
        mir = {"SETUP_T": start, "START_T": start, "LOT_ID": lot.fab_lot,
               "SBLOT_ID": lot.lot_no, "PART_TYP": product, "JOB_NAM": f"{product}_ft",
               "JOB_REV": self.job_revs.get((product, step), JOB_REV), "TEST_COD": step,
               "MODE_COD": "P", "RTST_COD": "Y" if retest else "N",
               "TST_TEMP": str(temperature), "NODE_NAM": tester, "TSTR_TYP": "MST-4000"}
        sdr = {"HEAD_NUM": 1, "SITE_GRP": 1, "SITE_CNT": 1, "SITE_NUM": [0],
               "HAND_TYP": "pick-and-place", "HAND_ID": HANDLERS.get(tester, "HDL-01"),
               "LOAD_TYP": "load board", "LOAD_ID": f"LB-{product}-1"}
        return write_stdf(None, mir=mir, parts=parts, tests=tests, sdrs=[sdr],
                          good_units=good_units, unit_tests=[t1, t2])

    def tested(self, at: datetime, lot: Lot, step: str, operator: User) -> dict[str, Any]:
        """The lot has just been tested at `step` (it is still running there): import its
        first pass over every unit, and the retest of its failures when it had one, close
        the insertion, then compute static PAT limits when their time has come. Returns
        the insertion's proposed track-out."""
        product = lot.product.code
        key = (product, step)
        i = self.runs.get(key, 0)
        self.runs[key] = i + 1
        units = lot.quantity
        loss = STEP_WORK[step][2] * FT_LOSS_FACTOR.get(product, 1.0)
        fails = _fails(i, step, units, loss)
        failed = sum(fails.bins.values())
        with simulated_time(at - timedelta(minutes=30)), self.session.no_autoflush:
            testfloor.import_stdf(self.session, operator, lot,
                                  self.stdf(lot, step, at, units - failed, fails.bins),
                                  step=step, pass_="first")
        if fails.recovered is not None and failed:
            # Every failure tested again: the recovered ones pass, the others fail again in
            # the bin they failed in.
            again = {b: n - fails.recovered.get(b, 0) for b, n in fails.bins.items()}
            with simulated_time(at - timedelta(minutes=10)), self.session.no_autoflush:
                testfloor.import_stdf(
                    self.session, operator, lot,
                    self.stdf(lot, step, at, sum(fails.recovered.values()),
                              {b: n for b, n in again.items() if n}, retest=True),
                    step=step, pass_="retest")
        with simulated_time(at), self.session.no_autoflush:
            proposal = insertions.close(self.session, operator, lot, step).proposal
        assert proposal is not None
        if (not self.pat_done and key == (PAT_PRODUCT, PAT_STEP)
                and self.runs[key] >= PAT_AFTER_LOTS):
            self.pat_done = True
            self._static_pat(at + timedelta(minutes=20), lot.product)
        return proposal

    def _static_pat(self, at: datetime, product: Product) -> None:
        """The engineer computes static PAT limits for PAT_PRODUCT at PAT_STEP and releases
        the next program revision carrying them: later files are screened with them and
        name them."""
        with simulated_time(at):
            computed = testfloor.compute_pat_limits(self.session, self.engineer, product,
                                                    step=PAT_STEP, tests=PAT_TESTS)
            assert computed.version is not None
            programs.release_program(
                self.session, self.engineer, product, step=PAT_STEP,
                job_name=f"{PAT_PRODUCT}_ft", job_rev=PAT_JOB_REV,
                temperature_c=ft_temperature(product, PAT_STEP), part_type=PAT_PRODUCT,
                pat_limit_set=computed.version.name,
                pat_limit_set_version=computed.version.version)
        self.job_revs[(PAT_PRODUCT, PAT_STEP)] = PAT_JOB_REV

    def sba_excursion(self, end: datetime) -> None:
        """At the end of the history a lot tests low at a final test step: its yield falls
        between SBA's SYL1 and SYL2 and the lot is held for engineering review. The lot is
        the first one queued or running at a final test step whose product has the six
        earlier lots SBA needs there; the extra failures land in a bin the history never
        saw, so that only the yield is judged."""
        candidates = self.session.scalars(
            select(Lot).where(Lot.step_code.in_(FT_STEPS), Lot.state.in_(ACTIVE_LOT_STATES))
            .order_by(Lot.lot_no))
        for lot in candidates:
            yields = self._history_yields(lot)
            if len(yields) >= testfloor.SBA_MIN_LOTS and not lot.open_holds:
                break
        else:
            return
        mean, sigma = statistics.mean(yields), statistics.stdev(yields)
        units = lot.quantity
        # The middle of the band between SYL1 (mean - 3 sigma) and SYL2 (mean - 4 sigma).
        good = math.floor(units * (mean - 3.5 * sigma) / 100)
        at = end - timedelta(minutes=5)
        with simulated_time(at), self.session.no_autoflush:
            testfloor.import_stdf(self.session, self.day_operator, lot,
                                  self.stdf(lot, lot.step_code, at, good,
                                            {EXCURSION_BIN: units - good}),
                                  step=lot.step_code)
            # SBA judges the insertion once, when it closes.
            insertions.close(self.session, self.day_operator, lot, lot.step_code)

    def _history_yields(self, lot: Lot) -> list[float]:
        closed = self.session.scalars(
            select(TestInsertion).where(TestInsertion.product_id == lot.product_id,
                                        TestInsertion.step_code == lot.step_code,
                                        TestInsertion.lot_id != lot.id,
                                        TestInsertion.state == "closed",
                                        TestInsertion.units > 0)
            .order_by(TestInsertion.closed_at.desc(), TestInsertion.id.desc())
            .limit(testfloor.SBA_HISTORY_LOTS))
        return [i.final_good * 100 / i.units for i in closed]


def load_demo_test_history(session: Session, tests: _TestHistory, end: datetime) -> None:
    """After the lots' history: the one SBA excursion that waits for engineering review
    (the files of the history were imported as each lot was tested)."""
    tests.sba_excursion(end)


# --- shipments ---------------------------------------------------------------------------

# Per customer, the oldest completed lots that may ship go out in one shipment this many
# lots strong, two hours after the later of them was packed (the rest stay completed).
SHIPMENT_LOTS = 2
VEHICLE_PROGRAMS = {OEM: "EV-HV7 inverter", TIER1: "BCM-26 body controller"}
# Reels per dry bag, and dry bags (or reels) per box.
REELS_PER_BAG = 3
PER_BOX = 4


def _pack_completed(session: Session, lot: Lot, operator: User) -> list[PackUnit]:
    """Reel the lot at its standard pack quantity, seal moisture-sensitive reels in dry
    bags, and box them: the boxes."""
    reels = packing.pack_lot(session, operator, lot, carrier=PackKind.REEL)
    inner = reels
    if packing.moisture_sensitive(lot.product):
        inner = [packing.make_package(session, operator, kind=PackKind.BAG,
                                      children=[r.code for r in reels[i:i + REELS_PER_BAG]])
                 for i in range(0, len(reels), REELS_PER_BAG)]
    return [packing.make_package(session, operator, kind=PackKind.BOX,
                                 children=[u.code for u in inner[i:i + PER_BOX]])
            for i in range(0, len(inner), PER_BOX)]


def load_demo_packing(session: Session, end: datetime) -> dict[int, list[PackUnit]]:
    """Pack every completed lot free of holds an hour after it completed (before `end`):
    reels, dry bags for moisture-sensitive products, boxes. Answers each lot's boxes."""
    operator = _person(session, "op2")
    boxes: dict[int, list[PackUnit]] = {}
    lots = session.scalars(select(Lot).where(Lot.state == LotState.COMPLETED,
                                             Lot.open_holds == 0)
                           .order_by(Lot.updated_at, Lot.id)).all()
    for lot in lots:
        with simulated_time(min(lot.updated_at + timedelta(hours=1), end)):
            boxes[lot.id] = _pack_completed(session, lot, operator)
            # Flushed inside the simulated time: the lot's updated_at is stamped at flush.
            session.flush()
    return boxes


def load_demo_shipments(session: Session, end: datetime,
                        boxes: dict[int, list[PackUnit]] | None = None) -> None:
    """Ship, per customer, its oldest completed lots that every shipping rule allows (one
    shipment each, through the shipping service at a simulated time before `end`): packed
    lots go in cartons, one per product, holding their boxes; lots not packed ship as
    lots."""
    planner = _person(session, "planner")
    boxes = boxes or {}
    for customer in session.scalars(select(Customer).order_by(Customer.code)):
        lots = [lot for lot in shipping.shippable_lots(session, customer)
                if shipping.refusal(session, lot, customer) is None][:SHIPMENT_LOTS]
        if not lots:
            continue
        at = min(max(lot.updated_at for lot in lots) + timedelta(hours=2), end)
        with simulated_time(at):
            by_product: dict[int, list[str]] = {}
            for lot in lots:
                by_product.setdefault(lot.product_id, []).extend(
                    box.code for box in boxes.get(lot.id, []))
            cartons = [packing.make_package(session, planner, kind=PackKind.CARTON,
                                            children=codes).code
                       for codes in by_product.values() if codes]
            shipping.create_shipment(session, planner, {
                "customer": customer.code, "po": f"PO-{customer.code[:4]}-{at:%y%m%d}",
                "vehicle_program": VEHICLE_PROGRAMS.get(customer.code),
                "pack_units": cartons,
                "lots": [lot.lot_no for lot in lots if lot.id not in boxes]})
            # Flushed inside the simulated time: the lots' updated_at is stamped at flush.
            session.flush()


# --- a product change in progress -------------------------------------------------------

# A new mold compound for two QFN products (revision B of their BOMs), recorded some days
# into the history; its requalification is partly done (temperature cycling and storage
# life passed on revision B, the humidity stresses still running). Cyanlake approves its
# PCN a week later; Ferroquill has not answered and its 90 days' notice runs on.
CHANGE_AFTER = timedelta(days=4)
PCN_APPROVED_AFTER = timedelta(days=11)
CHANGE_BUILDS = ("GD-5532", "LIN-3316")
CHANGE: dict[str, Any] = {
    "title": "Mold compound EMC-G700-HF to EMC-G760-LS (ultra-low stress, low alpha)",
    "kind": "material", "products": list(CHANGE_BUILDS), "bom_revision": "B",
    "description": "The compound supplier discontinues EMC-G700-HF; EMC-G760-LS lowers "
                   "package stress on the 5x5 and 3x3 QFN. Same mold process window."}
CHANGE_REPORT = "QR-2026-0530-B"
CHANGE_DONE_STRESSES = [("TC", 77, 3), ("HTSL", 45, 1)]


def load_demo_change(session: Session, at: datetime) -> None:
    """Record the mold compound change: revision B of each product's BOM (the new compound
    at MOLD), the change, the requalification done so far on revision B, and its PCNs."""
    engineer = _person(session, "engineer")
    for code in CHANGE_BUILDS:
        product = catalog.get_product(session, code)
        items = [{**item, "part_numbers": [_part_number("EMCL-")]}
                 if item["material"] == "mold_compound" else item
                 for item in _bom_items(code)]
        catalog.create_bom(session, engineer, product,
                           _load(BomIn(), {"revision": CHANGE["bom_revision"],
                                           "items": items}, f"BOM {code}"))
    change = changes.create_change(session, engineer, _load(ChangeIn(), CHANGE, "change"))
    for code in CHANGE_BUILDS:
        product = catalog.get_product(session, code)
        catalog.add_qualification(session, engineer, product, _load(QualificationIn(), {
            "standard": "AEC-Q100", "grade": product.aec_grade, "report": CHANGE_REPORT,
            "bom_revision": CHANGE["bom_revision"],
            "tests": [{"test": test, "sample_size": size, "lots": lots, "fails": 0,
                       "preconditioned": test == "TC"}
                      for test, size, lots in CHANGE_DONE_STRESSES]},
            f"qualification {code} B"))
    changes.send_pcns(session, engineer, change)


def approve_demo_pcn(session: Session, customer: str) -> None:
    """The customer's supplier quality engineer approves the change's PCN."""
    user = session.scalars(select(User).where(User.role == "customer")
                           .join(Customer, Customer.id == User.customer_id)
                           .where(Customer.code == customer).order_by(User.id)).first()
    assert user is not None
    for pcn in session.scalars(changes.pcn_query(user)):
        changes.decide_pcn(session, user, pcn, True,
                           "Reviewed the requalification plan; approved for EV-HV7.")


def on_demo_change(lot: Lot) -> bool:
    """Whether the lot is built on the mold compound change's revision."""
    bom = floor.lot_bom(lot)
    return bom is not None and bom.revision == CHANGE["bom_revision"]


def load_demo_change_shipment(session: Session, end: datetime,
                              boxes: dict[int, list[PackUnit]] | None = None) -> None:
    """Ship the lot built on the new revision to the customer who approved the PCN, in a
    carton of its boxes when it was packed (the other customer's lot on it stays completed:
    409 pcn_not_accepted)."""
    planner = _person(session, "planner")
    customer = session.scalars(select(Customer).where(Customer.code == OEM)).one()
    lots = [lot for lot in shipping.shippable_lots(session, customer)
            if on_demo_change(lot) and shipping.refusal(session, lot, customer) is None]
    if not lots:
        return
    at = min(max(lot.updated_at for lot in lots) + timedelta(hours=3), end)
    with simulated_time(at):
        by_product: dict[int, list[str]] = {}
        for lot in lots:
            by_product.setdefault(lot.product_id, []).extend(
                box.code for box in (boxes or {}).get(lot.id, []))
        cartons = [packing.make_package(session, planner, kind=PackKind.CARTON,
                                        children=codes).code
                   for codes in by_product.values() if codes]
        shipping.create_shipment(session, planner, {
            "customer": OEM, "po": f"PO-{OEM[:4]}-{at:%y%m%d}-B",
            "vehicle_program": VEHICLE_PROGRAMS.get(OEM),
            "lots": [lot.lot_no for lot in lots if not boxes or lot.id not in boxes],
            "pack_units": cartons})
        session.flush()


def load_demo_lots(session: Session, now: datetime | None = None) -> None:
    """Give the demo plant about 200 lots with the history of the 30 days before `now`
    (default: now), made through the floor services at simulated times: receipts, track-ins
    and track-outs with rejects and materials, splits and merges. The same lots every time.

    Needs the demo master data and users; raises what the services raise if it is missing.
    """
    history = _History(session, now or utcnow())
    history.run()
    load_demo_test_history(session, history.tests, history.end)
    boxes = load_demo_packing(session, history.end)
    load_demo_orders(session, history.end, VEHICLE_PROGRAMS)
    load_demo_shipments(session, history.end, boxes)
    load_demo_change_shipment(session, history.end, boxes)
    load_demo_spc(session, history.end)
    load_demo_complaints(session, history.end, open_for=OEM, closed_for=TIER1)
    load_demo_partners(session, history.end)
    load_demo_outlooks(session, history.end)


def load_demo(session: Session) -> bool:
    """Create the demo plant in the caller's transaction and return True; when it is already
    present (the OEM customer exists) change nothing and return False.

    The master data is dated the day before the lots' 30-day history begins.

    Raises InvalidInput if a demo record fails its input schema or the password policy, and
    Conflict if part of the demo data exists without the OEM customer; the caller rolls back.
    """
    if session.scalar(select(Customer.id).where(Customer.code == OEM)) is not None:
        return False
    now = utcnow()
    data = _validated(now)
    with simulated_time(now - HISTORY - timedelta(days=1)):
        _create_master_data(session, data)
        _create_users(session)
        load_demo_test_programs(session)
    load_demo_maintenance(session, now - HISTORY - timedelta(days=1))
    # Lots come last: they need the routes, equipment, material lots and operators above.
    load_demo_lots(session, now)
    return True
