"""Traceability: backward and forward traces through the genealogy, containment."""
