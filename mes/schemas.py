"""Schema instances shared by the API and the pages."""

from __future__ import annotations

from functools import cache

from marshmallow import Schema


@cache
def schema_instance(schema: type[Schema], many: bool = False) -> Schema:
    """One instance per schema class: building one copies every field, and loading or
    dumping keeps no state on the instance."""
    return schema(many=many)
