"""Events for customers' systems: a transactional outbox (`publish`), webhook
subscriptions, and the worker that delivers them signed per Standard Webhooks."""

from mes.events.outbox import publish

__all__ = ["publish"]
