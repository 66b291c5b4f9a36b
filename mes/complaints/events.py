"""What complaints announce, for other parts of the system to act on (the customer's event
subscriptions).

Receivers run synchronously inside the sender's transaction; an exception they raise
refuses the action. This module imports nothing of the project so that any domain may
import it.
"""

from __future__ import annotations

from blinker import Namespace

_signals = Namespace()

# Sent by `mes.complaints.services.open_complaint` once the complaint is written, with the
# complaint as sender and keyword arguments `session` and `actor`: "complaint.created".
complaint_created = _signals.signal("complaint.created")

# Sent by `mes.complaints.services.update_step` when a step is done, with the step (an
# EightDStepRow) as sender and keyword arguments `session` and `actor`:
# "eightd.step.completed".
step_completed = _signals.signal("eightd.step.completed")

# Sent by `mes.complaints.services.update_step` when D8 closes the complaint, with the
# complaint as sender and keyword arguments `session` and `actor`: "eightd.closed".
closed = _signals.signal("eightd.closed")
