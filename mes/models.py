"""Imports every table so that Base.metadata is complete (migrations, checks)."""

from mes.audit.models import AuditCheckpoint, AuditEvent
from mes.auth.models import ApiToken, LoginFailure, User
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
from mes.floor.models import (
    Lot,
    LotEdge,
    LotEvent,
    LotReject,
    LotWafer,
    MaterialUse,
    StepRun,
    Wafer,
)
from mes.quality.models import FutureHold, Hold

__all__ = [
    "ApiToken", "LoginFailure", "AuditCheckpoint", "AuditEvent", "Customer", "Equipment",
    "EquipmentStateChange", "MaterialLot", "Product", "Qualification", "QualificationTest",
    "ReasonCode", "Route", "RouteStep", "User", "Lot", "LotEdge", "LotEvent", "LotReject",
    "LotWafer", "MaterialUse", "StepRun", "Wafer", "Hold", "FutureHold",
]
