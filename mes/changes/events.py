"""What change control announces, for other parts of the system to act on (the events
capability, mail or a customer's system; nothing subscribes yet).

Receivers run synchronously inside the sender's transaction; an exception they raise
refuses the action. This module imports nothing of the project so that any domain may
import it.
"""

from __future__ import annotations

from blinker import Namespace

_signals = Namespace()

# Sent by `mes.changes.services.send_pcns` once per PCN written, with the PCN as sender and
# keyword arguments `session` and `actor`. The event's name is "pcn.sent".
pcn_sent = _signals.signal("pcn.sent")

# Sent by `mes.changes.services.decide_pcn` after the customer's answer is written, with the
# PCN as sender and keyword arguments `session` and `actor`. The event's name is
# "pcn.decided".
pcn_decided = _signals.signal("pcn.decided")
