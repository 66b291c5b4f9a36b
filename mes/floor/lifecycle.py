"""The lot lifecycle: what the shop floor announces about a lot, for other domains to act on.

The floor knows nothing of the rules that react to its moves (quality's yield hold and
future holds); they subscribe here. Receivers run synchronously inside the sender's
transaction, in the order they connected, and an exception they raise refuses the move
as if the floor had raised it. This module imports nothing of the project so that every
domain may import it.
"""

from __future__ import annotations

from blinker import Namespace

_signals = Namespace()

# Sent by `mes.floor.services.track_out` once the track-out is found valid and before
# anything is written, with the lot as sender and keyword arguments `session`, `actor` and
# `run` (the lot's open StepRun: its step and equipment), `good_qty` and `rejects` (the
# track-out's quantities, found to add up). A receiver refuses the
# track-out by raising (process control: a sample due for the lot, 409 sample_due).
# Receivers keep the track-out cheap: no query unless a rule may apply to the step.
lot_tracking_out = _signals.signal("lot-tracking-out")

# Sent by `mes.floor.services.track_out` after the lot has moved (and its step run is
# closed), with the lot as sender and keyword arguments `session`, `actor`, `step` (the
# StepInfo of the step just finished), `qty_in`, `good_qty` and `rules_at_step` (whether
# active future holds wait at the step the lot arrived at, when read with the lot; else
# None).
lot_tracked_out = _signals.signal("lot-tracked-out")

# Sent by mes.quality when holds are placed on lots or released (after the rows are
# written, in the same transaction), with the list of lots as sender and the keyword
# argument `session`: forecasts recompute the held or released lots' completion.
lot_holds_changed = _signals.signal("lot-holds-changed")
