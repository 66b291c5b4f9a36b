"""Traceability tests."""
