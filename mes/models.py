"""Imports every table so that Base.metadata is complete (migrations, checks)."""

from mes.audit.models import AuditCheckpoint, AuditEvent
from mes.auth.models import ApiToken, User
from mes.catalog.models import (
    Customer,
    Equipment,
    EquipmentStateChange,
    MaterialLot,
    Product,
    Qualification,
    QualificationTest,
    ReasonCode,
    Route,
    RouteStep,
)

__all__ = [
    "ApiToken", "AuditCheckpoint", "AuditEvent", "Customer", "Equipment",
    "EquipmentStateChange", "MaterialLot", "Product", "Qualification", "QualificationTest",
    "ReasonCode", "Route", "RouteStep", "User",
]
