"""Events for customers' systems: a transactional outbox (`publish`), webhook
subscriptions, and the worker that delivers them signed per Standard Webhooks."""

from mes.events import publishers  # noqa: F401  # subscribes to the PCN signals
from mes.events.outbox import publish

__all__ = ["publish"]
