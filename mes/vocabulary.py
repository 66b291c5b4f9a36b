"""The closed sets of codes MES-lite stores and shows: lot states, hold sources,
dispositions, SEMI E10 equipment states, reason kinds and the others, each a `StrEnum`
with its words in the user's language.

The codes are the strings the database holds and the API answers (a member equals its
string, so `LotState.QUEUED == "queued"`); the database refuses any other value (CHECK
constraints named after the column). `member.label` is the lazily translated word a page
shows; `Enum.labels()` maps every code to its word, so a template looks a code up with
`labels.get(code, code)`. Pure definitions: nothing here imports the rest of the package.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from functools import cache
from types import MappingProxyType
from typing import Any, Self

from flask_babel import lazy_gettext as _l


class Vocabulary(StrEnum):
    """A closed set of codes. Members are declared as `NAME = "code", _l("Label")`; a member
    without a label shows its code (codes that are names in every language, like
    "AEC-Q100")."""

    _value_: str
    label: Any  # a flask_babel LazyString, or the code itself

    def __new__(cls, value: str, label: Any = None) -> Self:
        member = str.__new__(cls, value)
        member._value_ = value
        member.label = value if label is None else label
        return member

    @classmethod
    @cache
    def codes(cls) -> tuple[str, ...]:
        """Every code as a plain string, in declaration order: for `in` tests (`"x" in
        LotState` is a TypeError before Python 3.12), validators and SQL IN lists."""
        return tuple(member.value for member in cls)

    @classmethod
    @cache
    def labels(cls) -> Mapping[str, Any]:
        """Every code and its word; looked up with a plain string or a member alike."""
        return MappingProxyType({member: member.label for member in cls})

    @classmethod
    def word(cls, code: str | None) -> Any:
        """The word of `code`, or the code itself when the set does not know it (an open
        set's new code, such as an equipment kind an engineer made up)."""
        return cls.labels().get(code or "", code or "")

    @classmethod
    def choices(cls, members: tuple[Self, ...] | None = None) -> list[tuple[str, str]]:
        """(code, word in the current language) for a form's select, in declaration order
        (or only `members`)."""
        return [(m.value, str(m.label)) for m in (members if members is not None else cls)]


# --- lots ------------------------------------------------------------------------------

class LotState(Vocabulary):
    QUEUED = "queued", _l("Queued")
    RUNNING = "running", _l("Running")
    COMPLETED = "completed", _l("Completed")
    SHIPPED = "shipped", _l("Shipped")
    SCRAPPED = "scrapped", _l("Scrapped")
    MERGED = "merged", _l("Merged")
    # Waiting in the die bank: received, not yet released to the floor (not WIP).
    BANKED = "banked", _l("In die bank")


# A lot in these states is still the plant's work in progress.
ACTIVE_LOT_STATES = (LotState.QUEUED, LotState.RUNNING)
# A lot in these states can no longer move.
CLOSED_LOT_STATES = (LotState.COMPLETED, LotState.SHIPPED, LotState.SCRAPPED, LotState.MERGED)


class EventKind(Vocabulary):
    """What a lot history event records (`lot_event.kind`; the audit code is `lot:<kind>`)."""

    RECEIVE = "receive", _l("Received")
    TRACK_IN = "track_in", _l("Track-in")
    TRACK_OUT = "track_out", _l("Track-out")
    TRACK_IN_ABORT = "track_in_abort", _l("Track-in undone")
    SPLIT = "split", _l("Split")
    SPLIT_FROM = "split_from", _l("Split from parent")
    MERGE = "merge", _l("Merge")
    MERGED_INTO = "merged_into", _l("Merged into")
    HOLD = "hold", _l("Hold")
    RELEASE = "release", _l("Hold released")
    REWORK = "rework", _l("Rework")
    SCRAP = "scrap", _l("Scrap")
    TEST_RUN = "test_run", _l("Test data")
    MOISTURE_OPEN = "moisture_open", _l("Dry pack opened")
    MOISTURE_SEAL = "moisture_seal", _l("Sealed in dry bag")
    MOISTURE_DRY_STORAGE = "moisture_dry_storage", _l("Dry storage")
    MOISTURE_BAKE = "moisture_bake", _l("Baked")
    SHIP = "ship", _l("Shipped")
    PACK = "pack", _l("Packed")
    BANK_RELEASE = "bank_release", _l("Released from die bank")


class EdgeKind(Vocabulary):
    """How units went from a parent lot to a child lot (`lot_edge.kind`)."""

    SPLIT = "split", _l("Split")
    MERGE = "merge", _l("Merge")


class StepStatus(Vocabulary):
    """Where a lot stands with one step of its route, as the lot page shows it."""

    DONE = "done", _l("Done")
    CURRENT = "current", _l("Current")
    TODO = "todo", _l("To do")
    NOT_REACHED = "not_reached", _l("Not reached")


# --- master data -----------------------------------------------------------------------

class StepKind(Vocabulary):
    ASSEMBLY = "assembly", _l("Assembly")
    INSPECTION = "inspection", _l("Inspection")
    TEST = "test", _l("Test")
    PACK = "pack", _l("Pack")


class EquipmentState(Vocabulary):
    """SEMI E10 equipment states."""

    PRODUCTIVE = "productive", _l("Productive")
    STANDBY = "standby", _l("Standby")
    ENGINEERING = "engineering", _l("Engineering")
    SCHEDULED_DOWN = "scheduled_down", _l("Scheduled down")
    UNSCHEDULED_DOWN = "unscheduled_down", _l("Unscheduled down")
    NON_SCHEDULED = "non_scheduled", _l("Non-scheduled")


class EquipmentKind(Vocabulary):
    """The usual kinds of equipment of a packaging and test house, with their words. Unlike
    the other sets this one is open: `equipment.kind` and `route_step.equipment_kind` take
    any code an engineer gives (no CHECK), and a kind not listed here shows its code."""

    MICROSCOPE = "microscope", _l("microscope")
    GRINDER = "grinder", _l("grinder")
    MOUNTER = "mounter", _l("wafer mounter")
    SAW = "saw", _l("saw")
    AOI = "aoi", _l("automated optical inspection")
    DIE_BONDER = "die_bonder", _l("die bonder")
    PLASMA = "plasma", _l("plasma cleaner")
    WIRE_BONDER = "wire_bonder", _l("wire bonder")
    MOLDER = "molder", _l("molding press")
    OVEN = "oven", _l("curing oven")
    BAKE_OVEN = "bake_oven", _l("bake oven")
    DEFLASHER = "deflasher", _l("deflasher")
    PLATER = "plater", _l("plating line")
    LASER_MARKER = "laser_marker", _l("laser marker")
    STEP_CUT_SAW = "step_cut_saw", _l("step-cut saw (wettable flank)")
    SINGULATION_SAW = "singulation_saw", _l("singulation saw")
    TRIM_FORM = "trim_form", _l("trim and form press")
    VISION = "vision", _l("vision inspection")
    TESTER = "tester", _l("tester")
    QA_STATION = "qa_station", _l("QA station")
    TAPER = "taper", _l("tape and reel machine")
    DRY_PACK_SEALER = "dry_pack_sealer", _l("dry pack sealer")


class DurableKind(Vocabulary):
    """The consumable parts mounted on a tool that wear with use ("durables"), each counted
    in its own unit: touchdowns, cuts, shots or insertions."""

    CAPILLARY = "capillary", _l("capillary")
    SAW_BLADE = "saw_blade", _l("saw blade")
    MOLD_CHASE = "mold_chase", _l("mold chase")
    LOAD_BOARD = "load_board", _l("load board")
    SOCKET = "socket", _l("socket")
    PROBE_CARD = "probe_card", _l("probe card")


class DurableAction(Vocabulary):
    """What happened to a durable on a tool (its mount history)."""

    MOUNT = "mount", _l("mounted")
    UNMOUNT = "unmount", _l("removed")


class MaterialType(Vocabulary):
    """The usual types of material a step consumes (`material_lot.material`,
    `route_step.materials`), with their words; an open set like EquipmentKind."""

    EPOXY = "epoxy", _l("die-attach epoxy")
    WIRE = "wire", _l("bonding wire")
    MOLD_COMPOUND = "mold_compound", _l("mold compound")
    LEADFRAME = "leadframe", _l("leadframe")
    SUBSTRATE = "substrate", _l("substrate")
    SOLDER_PASTE = "solder_paste", _l("solder paste")
    CARRIER_TAPE = "carrier_tape", _l("carrier tape")


# The E10 down states: entered only with a downtime reason code, left only by an explicit
# change (a track-out never brings a tool back up).
DOWN_EQUIPMENT_STATES = (EquipmentState.ENGINEERING, EquipmentState.SCHEDULED_DOWN,
                         EquipmentState.UNSCHEDULED_DOWN)


class AbortReason(Vocabulary):
    """Why a track-in is undone (`POST /lots/{lot_no}/track-in/abort`)."""

    WRONG_LOT = "wrong_lot", _l("Wrong lot scanned")
    WRONG_EQUIPMENT = "wrong_equipment", _l("Wrong tool")
    WRONG_MATERIAL = "wrong_material", _l("Wrong material")
    WRONG_STEP = "wrong_step", _l("Wrong step or recipe")
    OTHER = "other", _l("Other")


# Equipment can take a lot only in these states.
AVAILABLE_EQUIPMENT_STATES = (EquipmentState.PRODUCTIVE, EquipmentState.STANDBY)


class ReasonKind(Vocabulary):
    """What a reason code is for."""

    REJECT = "reject", _l("Reject")
    HOLD = "hold", _l("Hold")
    SCRAP = "scrap", _l("Scrap")
    DOWNTIME = "downtime", _l("Downtime")


class CustomerCategory(Vocabulary):
    """What a customer reads of a reject or scrap reason: the kind of loss, never the
    plant's own reason code or text (the portal's and customers' reject Pareto)."""

    ASSEMBLY = "assembly", _l("Assembly")
    TEST = "test", _l("Electrical test")
    VISUAL = "visual", _l("Visual inspection")
    MATERIAL = "material", _l("Incoming material")
    HANDLING = "handling", _l("Handling")
    OTHER = "other", _l("Other")


class HoldPolicy(Vocabulary):
    """When customers see a hold on their lots (PORTAL_HOLD_POLICY)."""

    DELAY = "delay", _l("After a delay")
    NOTIFY = "notify", _l("Once QA notifies them")


class PackKind(Vocabulary):
    """What a pack unit is: a carrier holding units of one lot (reel, tray, tube), or a
    package of other pack units (dry bag, inner box, carton)."""

    REEL = "reel", _l("Reel")
    TRAY = "tray", _l("Tray")
    TUBE = "tube", _l("Tube")
    BAG = "bag", _l("Dry bag")
    BOX = "box", _l("Box")
    CARTON = "carton", _l("Carton")


# Carriers the units of a lot are packed into, and the packages built from pack units.
CARRIERS = (PackKind.REEL, PackKind.TRAY, PackKind.TUBE)
PACKAGES = (PackKind.BAG, PackKind.BOX, PackKind.CARTON)


class MslLevel(Vocabulary):
    """JEDEC J-STD-020 moisture sensitivity levels."""

    L1 = "1"
    L2 = "2"
    L2A = "2a"
    L3 = "3"
    L4 = "4"
    L5 = "5"
    L5A = "5a"
    L6 = "6"


class ProductKind(Vocabulary):
    """What a product is, which decides the AEC qualification standard that applies to it
    (mes.catalog.aec.STANDARD_FOR_KIND)."""

    IC = "ic", _l("Integrated circuit")
    DISCRETE = "discrete", _l("Discrete semiconductor")
    MODULE = "module", _l("Multichip module")


class QualStandard(Vocabulary):
    """AEC-Q200 (passive components) is kept for records made before the standard had to
    fit the product's kind; it applies to no kind of product made here."""

    AEC_Q100 = "AEC-Q100"
    AEC_Q101 = "AEC-Q101"
    AEC_Q104 = "AEC-Q104"
    AEC_Q200 = "AEC-Q200"


class QualStatus(Vocabulary):
    PASSED = "passed", _l("passed")
    FAILED = "failed", _l("failed")


class ChangeKind(Vocabulary):
    """What a product change alters (AEC-Q100's change-qualification table classifies it)."""

    MATERIAL = "material", _l("material")
    PROCESS = "process", _l("process")
    SITE = "site", _l("site")
    DESIGN = "design", _l("design")
    TEST = "test", _l("test")


class PcnStatus(Vocabulary):
    """A customer's answer to a product change notification."""

    PENDING = "pending", _l("awaiting the customer")
    APPROVED = "approved", _l("approved")
    REJECTED = "rejected", _l("rejected")


# --- quality ---------------------------------------------------------------------------

class HoldSource(Vocabulary):
    """Who or what placed a hold."""

    MANUAL = "manual", _l("Manual")
    MASS = "mass", _l("Mass hold")
    FUTURE = "future", _l("Future hold")
    YIELD = "yield", _l("Low yield")
    SBA = "sba", _l("SBA")
    CONTAINMENT = "containment", _l("Containment")
    SPC = "spc", _l("Process control")
    TEST_PROGRAM = "test_program", _l("Test program")
    PAT = "pat", _l("PAT")


class SystemText(Vocabulary):
    """What a text the system writes says (`hold.text_code`, beside the English kept in
    `hold.comment` for the API and for rows written before codes). Pages render the code
    with its parameters (`hold.text_params`) in the reader's language: mes/texts.py."""

    YIELD_BELOW_MIN = "yield_below_min", _l("Step yield below the minimum")
    SBA_BREACH = "sba_breach", _l("SBA limit breached")
    PROGRAM_MISMATCH = "program_mismatch", _l("Tested with another program")
    PAT_FALLOUT = "pat_fallout", _l("PAT fallout above the limit")
    PAT_ESCAPE = "pat_escape", _l("PAT escape")


class HoldStatus(Vocabulary):
    OPEN = "open", _l("open")
    RELEASED = "released", _l("released")


class Disposition(Vocabulary):
    """What releasing a hold decides for the lot."""

    RELEASE = "release", _l("Release: the lot continues")
    REWORK = "rework", _l("Rework: back to a step")
    SCRAP = "scrap", _l("Scrap a quantity")
    USE_AS_IS = "use_as_is", _l("Use as is (customer concession)")


# The dispositions a release of many holds at once may give (the others need per-lot data).
BULK_DISPOSITIONS = (Disposition.RELEASE, Disposition.USE_AS_IS)


class MatchKind(Vocabulary):
    """What a future hold (and a mass hold) matches lots by."""

    FAB_LOT = "fab_lot", _l("Fab lot")
    WAFER = "wafer", _l("Wafer")
    MATERIAL_LOT = "material_lot", _l("Material lot")
    EQUIPMENT = "equipment", _l("Equipment time window")
    LOTS = "lots", _l("Lot numbers")
    # Lot attributes a complaint's commonality may point at; no future hold matches them.
    DATE_CODE = "date_code", _l("Date code")
    ROUTE_VERSION = "route_version", _l("Route version")
    BOM_REVISION = "bom_revision", _l("BOM revision")


class FutureHoldStatus(Vocabulary):
    ACTIVE = "active", _l("active")
    RETIRED = "retired", _l("retired")


class MoistureState(Vocabulary):
    """A lot's moisture floor-life clock (J-STD-033)."""

    SEALED = "sealed", _l("Sealed")
    OPEN = "open", _l("Open (clock running)")
    DRY_STORAGE = "dry_storage", _l("Dry storage")
    # Shown for a lot that has no clock yet (never stored): no exposure was recorded.
    NOT_STARTED = "not_started", _l("No clock (not started)")


class MoistureAction(Vocabulary):
    """What an operator does to a lot's dry pack; the lot event is `moisture_<action>`."""

    OPEN = "open", _l("Dry pack opened")
    SEAL = "seal", _l("Sealed in dry bag")
    DRY_STORAGE = "dry_storage", _l("Dry storage")
    BAKE = "bake", _l("Baked")


# --- process control -------------------------------------------------------------------

class ChartKind(Vocabulary):
    """The control chart pair of a data collection plan, chosen by its subgroup size."""

    XBAR_R = "xbar_r", _l("X̄–R (mean and range)")
    XBAR_S = "xbar_s", _l("X̄–S (mean and standard deviation)")
    I_MR = "i_mr", _l("I–MR (individuals and moving range)")


class SpcChart(Vocabulary):
    """Which chart of the pair a rule hit is on."""

    XBAR = "xbar", _l("Mean / individuals")
    SPREAD = "spread", _l("Range / standard deviation")


class SpcEventState(Vocabulary):
    OPEN = "open", _l("open")
    CLOSED = "closed", _l("closed")


# --- test floor ------------------------------------------------------------------------

class TestRunSource(Vocabulary):
    __test__ = False  # not a pytest test class, despite the name

    STDF = "stdf"
    BINS = "bins"


class SbaStatus(Vocabulary):
    """Statistical bin/yield analysis (AEC-Q002) of a test run."""

    OK = "ok", _l("Within limits")
    LEVEL1 = "level1", _l("Level 1: engineering review")
    LEVEL2 = "level2", _l("Level 2: material review board")
    INSUFFICIENT_HISTORY = "insufficient_history", _l("Not enough history")


class PatMode(Vocabulary):
    """Which part average testing (AEC-Q001) limits a test run applied."""

    STATIC = "static", _l("Static")
    DYNAMIC = "dynamic", _l("Dynamic")
    BOTH = "both", _l("Static and dynamic")
    NONE = "none", _l("None")


# --- users -----------------------------------------------------------------------------

class Role(Vocabulary):
    OPERATOR = "operator", _l("operator")
    ENGINEER = "engineer", _l("engineer")
    QA = "qa", _l("qa")
    PLANNER = "planner", _l("planner")
    ADMIN = "admin", _l("admin")
    CUSTOMER = "customer", _l("customer")
    # A user of a partner organisation (mes.partners): reads the lots its grants allow.
    PARTNER = "partner", _l("partner")


class ActorName(Vocabulary):
    """The actors that are no user (mes.auth.actor.SystemActor), as `placed_by`, `by` and
    the audit trail name them; pages show their words instead of the names."""

    SYSTEM = "system", _l("System")
    CLI = "cli", _l("Command line")
    DEMO = "demo", _l("Demo data")
    TEST = "test", _l("Test data")


class Language(Vocabulary):
    """The interface languages (`user.locale`), each named in itself."""

    EN = "en", "English"
    ZH_CN = "zh_CN", "简体中文"


class ScanKind(Vocabulary):
    """What a scanned code turned out to be (GET /scan, the trace page's search box)."""

    LOT = "lot", _l("Lot")
    PACK_UNIT = "pack_unit", _l("Pack unit")
    LABEL = "label", _l("2D label")
    MARK = "mark", _l("Package mark")


class ComplaintState(Vocabulary):
    """Where a customer complaint stands: open until its 8D's D8 is done."""

    OPEN = "open", _l("open")
    CLOSED = "closed", _l("closed")


class EightDStep(Vocabulary):
    """The disciplines of an 8D report, in order (PRODUCT.md "Complaints and 8D")."""

    D0 = "D0", _l("D0 Preparation and emergency response")
    D1 = "D1", _l("D1 Team")
    D2 = "D2", _l("D2 Problem description")
    D3 = "D3", _l("D3 Containment")
    D4 = "D4", _l("D4 Root cause (occurrence and escape)")
    D5 = "D5", _l("D5 Corrective actions")
    D6 = "D6", _l("D6 Implementation and verification")
    D7 = "D7", _l("D7 Prevention of recurrence")
    D8 = "D8", _l("D8 Closure")


# The 8D steps whose customer-facing text the customer's users read in the portal.
CUSTOMER_EIGHTD_STEPS = (EightDStep.D3, EightDStep.D4, EightDStep.D5, EightDStep.D6,
                         EightDStep.D8)


# --- events ----------------------------------------------------------------------------

class EventType(Vocabulary):
    """What the plant tells a customer's system by webhook (mes.events)."""

    LOT_HOLD_PLACED = "lot.hold.placed", _l("Lot put on hold")
    LOT_HOLD_RELEASED = "lot.hold.released", _l("Lot hold released")
    LOT_ETA_CHANGED = "lot.eta.changed", _l("Lot completion forecast changed")
    ORDER_STATUS_CHANGED = "order.status.changed", _l("Order line status changed")
    SHIPMENT_CREATED = "shipment.created", _l("Shipment created")
    CONTAINMENT_CREATED = "containment.created", _l("Containment started")
    COMPLAINT_CREATED = "complaint.created", _l("Complaint received")
    EIGHTD_STEP_COMPLETED = "eightd.step.completed", _l("8D step completed")
    EIGHTD_CLOSED = "eightd.closed", _l("8D closed")
    PCN_SENT = "pcn.sent", _l("Change notification sent")
    PCN_DECIDED = "pcn.decided", _l("Change notification answered")


class DeliveryState(Vocabulary):
    """Where a webhook delivery stands: retried while pending, until delivered or given up."""

    PENDING = "pending", _l("pending")
    DELIVERED = "delivered", _l("delivered")
    FAILED = "failed", _l("failed")


class AnalysisResult(Vocabulary):
    """The result of a failure analysis step on returned units."""

    PASS = "pass", _l("pass")
    FAIL = "fail", _l("fail")
    FINDING = "finding", _l("finding")
class DistributionKind(Vocabulary):
    """What a forecast duration distribution describes (`forecast_distribution.kind`)."""

    STEP = "step", _l("Route step")
    HOLD = "hold", _l("Hold reason")


class DistributionSource(Vocabulary):
    """Where a forecast duration distribution came from: the step of this route (or the
    hold's own reason), the same step code on every route (or every hold reason), or the
    configured default when the history is too thin."""

    OWN = "own", _l("Own history")
    POOLED = "pooled", _l("Pooled history")
    DEFAULT = "default", _l("Configured default")


class LineStatus(Vocabulary):
    """An order line against its need date (mes.forecast.outlook): its quantity expected
    by then at P90 (on track), only at P50 (at risk), or not even at P50 (short)."""

    ON_TRACK = "on_track", _l("On track")
    AT_RISK = "at_risk", _l("At risk")
    SHORT = "short", _l("Short")


class CustomerKind(Vocabulary):
    """A customer record is a chip owner (`customer`: owns products, lots, orders) or a
    partner organisation (`partner`: a Tier-1 or vehicle maker a chip owner grants a view
    of some of its lots, mes.partners)."""

    CUSTOMER = "customer", _l("Customer")
    PARTNER = "partner", _l("Partner")


class WipStage(Vocabulary):
    """The stage of a lot in the WIP feed (mes.partners.feed, docs/feeds.md)."""

    DIE_BANK = "die_bank", _l("Die bank")
    ASSEMBLY = "assembly", _l("Assembly")
    TEST = "test", _l("Test")
    PACK = "pack", _l("Pack")


class BinKind(Vocabulary):
    """A tester bin is a hard bin (the handler's physical bin, PRR.HARD_BIN) or a soft bin
    (the program's finer classification, PRR.SOFT_BIN)."""

    HARD = "hard", _l("Hard bin")
    SOFT = "soft", _l("Soft bin")


class InsertionState(Vocabulary):
    """A lot's test insertion at a test step: open while files come in, closed once judged
    (SBA, PAT fallout) with the proposed track-out."""

    OPEN = "open", _l("open")
    CLOSED = "closed", _l("closed")


class TestPass(Vocabulary):
    """What a tester file is within its insertion: the first pass (P1), a retest of the
    failures (R1, R2, ...) or a resume of the same pass after a tester stop."""

    __test__ = False  # not a pytest test class, despite the name

    FIRST = "first", _l("First pass")
    RETEST = "retest", _l("Retest")
    RESUME = "resume", _l("Resume")
