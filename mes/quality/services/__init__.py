"""Quality rules: holds on one lot or on every lot a criterion matches, future holds that
stop a lot when it reaches a step, automatic yield holds, release with a disposition and
moisture floor life, one module each. Callers use this package's names
(`from mes.quality import services`).

Every function works in the caller's transaction and raises before changing anything when a
rule refuses. Importing the package subscribes the track-out rules (`yields`) to the
floor's lot lifecycle.
"""

from mes.quality.services.common import IN_PLANT
from mes.quality.services.future import (
    create_future_hold,
    future_hold_query,
    get_future_hold,
    on_arrival,
    present_rules,
    retire_future_hold,
)
from mes.quality.services.holds import get_hold, hold_lot, hold_query, lot_holds, place_holds
from mes.quality.services.matching import (
    Criterion,
    MassHold,
    PreviewRow,
    criterion,
    mass_hold,
    match_lots,
    match_preview,
    matched_lots_query,
    seed_ids,
)
from mes.quality.services.moisture import (
    BakeResult,
    MoistureView,
    bake_requirement,
    check_bake,
    moisture_action,
    moisture_view,
    record_bake,
)
from mes.quality.services.release import (
    RELEASING_ROLES,
    release_hold,
    release_holds,
    release_refusal,
    releasers,
    rework_steps,
)
from mes.quality.services.yields import (
    YIELD_REASON,
    after_track_out,
    automatic_reason,
    yield_reason,
)

__all__ = [
    "IN_PLANT",
    "RELEASING_ROLES",
    "YIELD_REASON",
    "PreviewRow",
    "match_preview",
    "release_refusal",
    "releasers",
    "rework_steps",
    "Criterion",
    "MassHold",
    "BakeResult",
    "MoistureView",
    "after_track_out",
    "automatic_reason",
    "present_rules",
    "create_future_hold",
    "criterion",
    "future_hold_query",
    "get_future_hold",
    "get_hold",
    "hold_lot",
    "hold_query",
    "lot_holds",
    "mass_hold",
    "match_lots",
    "matched_lots_query",
    "bake_requirement",
    "check_bake",
    "moisture_action",
    "record_bake",
    "moisture_view",
    "on_arrival",
    "place_holds",
    "release_hold",
    "release_holds",
    "retire_future_hold",
    "seed_ids",
    "yield_reason",
]
