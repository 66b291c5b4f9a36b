"""Master data endpoints (engineer / admin write; every internal role reads)."""

from __future__ import annotations

from typing import Any

from flask_login import current_user
from sqlalchemy import Select, select
from sqlalchemy.orm import selectinload

from mes import db
from mes.api import bp
from mes.api.registry import ListArgs, Page, api_route, paginate, paginate_list
from mes.auth.permissions import Permission
from mes.catalog import schemas as s
from mes.catalog import services
from mes.catalog.models import Customer, Durable, Equipment, MaterialLot, Product, ReasonCode

READ, WRITE = Permission.MASTER_READ, Permission.MASTER_WRITE
# Recording a material lot's removal from the freezer or its opening is floor work.
MATERIAL_USE = Permission.LOT_TRACK


# --- customers -------------------------------------------------------------------------

@api_route(bp, "/customers", permission=READ, query=ListArgs, response=s.CustomerOut,
           many=True, tag="master data")
def list_customers(args: dict[str, Any]) -> Page:
    """List customers."""
    return paginate(db.session(), select(Customer).order_by(Customer.code), args)


@api_route(bp, "/customers", method="POST", permission=WRITE, body=s.CustomerIn,
           response=s.CustomerOut, tag="master data")
def create_customer(data: dict[str, Any]) -> Customer:
    """Create a customer."""
    return services.create_customer(db.session(), current_user, data)


@api_route(bp, "/customers/<code>", permission=READ, response=s.CustomerOut,
           tag="master data")
def get_customer(code: str) -> Customer:
    """One customer."""
    return services.get_customer(db.session(), code)


@api_route(bp, "/customers/<code>", method="PATCH", permission=WRITE, body=s.CustomerPatch,
           response=s.CustomerOut, status=200, tag="master data")
def update_customer(code: str, data: dict[str, Any]) -> Customer:
    """Change a customer."""
    session = db.session()
    return services.update_customer(session, current_user,
                                    services.get_customer(session, code), data)


# --- routes ----------------------------------------------------------------------------

@api_route(bp, "/routes", permission=READ, response=s.RouteOut, many=True, query=ListArgs,
           tag="master data")
def list_routes(args: dict[str, Any]) -> Page:
    """List the current version of every route."""
    return paginate_list(services.list_routes(db.session()), args)


@api_route(bp, "/routes", method="POST", permission=WRITE, body=s.RouteIn,
           response=s.RouteOut, tag="master data")
def create_route(data: dict[str, Any]) -> Any:
    """Create a route, or the next version of an existing route code."""
    return services.create_route(db.session(), current_user, data)


@api_route(bp, "/routes/<code>", permission=READ, query=s.RouteQuery, response=s.RouteOut,
           tag="master data")
def get_route(code: str, args: dict[str, Any]) -> Any:
    """A route: the current version, or the one named by ?version=."""
    return services.get_route(db.session(), code, args["version"])


# --- products --------------------------------------------------------------------------

def _products() -> Select[Product]:
    return select(Product).options(selectinload(Product.customer),
                                   selectinload(Product.qualifications))


@api_route(bp, "/products", permission=READ, query=ListArgs, response=s.ProductOut,
           many=True, tag="master data")
def list_products(args: dict[str, Any]) -> Page:
    """List products."""
    return paginate(db.session(), _products().order_by(Product.code), args)


@api_route(bp, "/products", method="POST", permission=WRITE, body=s.ProductIn,
           response=s.ProductOut, tag="master data")
def create_product(data: dict[str, Any]) -> Product:
    """Create a product on a route."""
    return services.create_product(db.session(), current_user, data)


@api_route(bp, "/products/<code>", permission=READ, response=s.ProductOut, tag="master data")
def get_product(code: str) -> Product:
    """One product, with `qualified`."""
    return services.get_product(db.session(), code)


@api_route(bp, "/products/<code>", method="PATCH", permission=WRITE, body=s.ProductPatch,
           response=s.ProductOut, status=200, tag="master data")
def update_product(code: str, data: dict[str, Any]) -> Product:
    """Change a product."""
    session = db.session()
    return services.update_product(session, current_user,
                                   services.get_product(session, code), data)


@api_route(bp, "/products/<code>/qualifications", method="POST",
           permission=Permission.LIMITS_WRITE, body=s.QualificationIn,
           response=s.QualificationOut, tag="master data")
def add_qualification(code: str, data: dict[str, Any]) -> Any:
    """Record a qualification of the product (or, with `family`, of its qualification
    family) at a BOM revision (`bom_revision`, required when the product has a bill of
    materials) and a grade (the product's or a more demanding one), under the standard of
    the product's kind (AEC-Q100 integrated circuits, Q101 discretes, Q104 modules). Each
    stress `{test, sample_size, lots, fails, preconditioned?}` needs at least its minimum
    sample from the standard's table: 422 `insufficient_sample` naming it. Passed when
    every stress has 0 fails."""
    session = db.session()
    return services.add_qualification(session, current_user,
                                      services.get_product(session, code), data)


@api_route(bp, "/products/<code>/qualifications", permission=READ,
           response=s.QualificationOut, many=True, query=ListArgs, tag="master data")
def list_qualifications(code: str, args: dict[str, Any]) -> Page:
    """A product's qualification records, oldest first."""
    product = services.get_product(db.session(), code)
    return paginate_list(list(product.qualifications), args)


# --- equipment -------------------------------------------------------------------------

class EquipmentListArgs(ListArgs, s.EquipmentQuery):
    pass


@api_route(bp, "/equipment", permission=READ, query=EquipmentListArgs,
           response=s.EquipmentOut, many=True, tag="master data")
def list_equipment(args: dict[str, Any]) -> Page:
    """List equipment, optionally by kind or E10 state."""
    stmt = select(Equipment).order_by(Equipment.code)
    if args["kind"]:
        stmt = stmt.where(Equipment.kind == args["kind"])
    if args["state"]:
        stmt = stmt.where(Equipment.state == args["state"])
    return paginate(db.session(), stmt, args)


@api_route(bp, "/equipment", method="POST", permission=WRITE, body=s.EquipmentIn,
           response=s.EquipmentOut, tag="master data")
def create_equipment(data: dict[str, Any]) -> Equipment:
    """Create a piece of equipment."""
    return services.create_equipment(db.session(), current_user, data)


@api_route(bp, "/equipment/<code>", permission=READ, response=s.EquipmentOut,
           tag="master data")
def get_equipment(code: str) -> Equipment:
    """One piece of equipment."""
    return services.get_equipment(db.session(), code)


@api_route(bp, "/equipment/<code>", method="PATCH", permission=Permission.EQUIPMENT_STATE,
           body=s.EquipmentPatch, response=s.EquipmentOut, status=200, tag="master data")
def update_equipment(code: str, data: dict[str, Any]) -> Equipment:
    """Change an equipment's E10 state (recorded with its time) or name."""
    session = db.session()
    equipment = services.get_equipment(session, code)
    return services.update_equipment(session, current_user, equipment, data)


# --- durables --------------------------------------------------------------------------

class DurableListArgs(ListArgs, s.DurableQuery):
    pass


@api_route(bp, "/durables", permission=READ, query=DurableListArgs, response=s.DurableOut,
           many=True, tag="master data")
def list_durables(args: dict[str, Any]) -> Page:
    """List durables (capillaries, saw blades, mold chases, load boards, sockets, probe
    cards), optionally of one kind or mounted on one tool."""
    stmt = select(Durable).options(selectinload(Durable.equipment)).order_by(Durable.code)
    if args["kind"]:
        stmt = stmt.where(Durable.kind == args["kind"])
    if args["equipment"]:
        stmt = stmt.where(Durable.equipment_id == select(Equipment.id).where(
            Equipment.code == args["equipment"]).scalar_subquery())
    return paginate(db.session(), stmt, args)


@api_route(bp, "/durables", method="POST", permission=WRITE, body=s.DurableIn,
           response=s.DurableOut, tag="master data")
def create_durable(data: dict[str, Any]) -> Durable:
    """Register a durable with its life limit (touchdowns, cuts, shots or insertions) and
    warning level (warn_at_pct, default 90)."""
    return services.create_durable(db.session(), current_user, data)


@api_route(bp, "/durables/<code>", permission=READ, response=s.DurableOut, tag="master data")
def get_durable(code: str) -> Durable:
    """One durable, with its count and the tool it is mounted on."""
    return services.get_durable(db.session(), code)


@api_route(bp, "/equipment/<code>/durables", method="POST", permission=WRITE,
           body=s.DurableMountIn, response=s.DurableOut, status=200, tag="master data")
def mount_durable(code: str, data: dict[str, Any]) -> Durable:
    """Mount a durable on the tool, replacing a mounted one of the same kind (recorded
    with who and when). 409 equipment_busy while a lot runs on the tool."""
    session = db.session()
    tool = services.get_equipment(session, code)
    return services.mount_durable(session, current_user, tool, data["durable"])


# --- reason codes ----------------------------------------------------------------------

class ReasonListArgs(ListArgs, s.ReasonCodeQuery):
    pass


@api_route(bp, "/reason-codes", permission=READ, query=ReasonListArgs,
           response=s.ReasonCodeOut, many=True, tag="master data")
def list_reason_codes(args: dict[str, Any]) -> Page:
    """List reason codes, optionally of one kind."""
    stmt = select(ReasonCode).order_by(ReasonCode.kind, ReasonCode.code)
    if args["kind"]:
        stmt = stmt.where(ReasonCode.kind == args["kind"])
    return paginate(db.session(), stmt, args)


@api_route(bp, "/reason-codes", method="POST", permission=WRITE, body=s.ReasonCodeIn,
           response=s.ReasonCodeOut, tag="master data")
def create_reason_code(data: dict[str, Any]) -> ReasonCode:
    """Create a reject, hold or scrap reason code."""
    return services.create_reason_code(db.session(), current_user, data)


@api_route(bp, "/reason-codes/<code>", permission=READ, response=s.ReasonCodeOut,
           tag="master data")
def get_reason_code(code: str) -> ReasonCode:
    """One reason code."""
    return services.get_reason_code(db.session(), code)


@api_route(bp, "/reason-codes/<code>", method="PATCH", permission=WRITE,
           body=s.ReasonCodePatch, response=s.ReasonCodeOut, status=200, tag="master data")
def update_reason_code(code: str, data: dict[str, Any]) -> ReasonCode:
    """Change a reason code's descriptions, the steps it applies to, or retire it."""
    session = db.session()
    return services.update_reason_code(session, current_user,
                                       services.get_reason_code(session, code), data)


# --- material lots ---------------------------------------------------------------------

class MaterialListArgs(ListArgs, s.MaterialLotQuery):
    pass


@api_route(bp, "/material-lots", permission=READ, query=MaterialListArgs,
           response=s.MaterialLotOut, many=True, tag="master data")
def list_material_lots(args: dict[str, Any]) -> Page:
    """List material lots, optionally of one material type."""
    stmt = select(MaterialLot).order_by(MaterialLot.code)
    if args["material"]:
        stmt = stmt.where(MaterialLot.material == args["material"])
    return paginate(db.session(), stmt, args)


@api_route(bp, "/material-lots", method="POST", permission=WRITE, body=s.MaterialLotIn,
           response=s.MaterialLotOut, tag="master data")
def create_material_lot(data: dict[str, Any]) -> MaterialLot:
    """Register a material lot."""
    return services.create_material_lot(db.session(), current_user, data)


@api_route(bp, "/material-lots/<code>", permission=READ, response=s.MaterialLotOut,
           tag="master data")
def get_material_lot(code: str) -> MaterialLot:
    """One material lot."""
    return services.get_material_lot(db.session(), code)


@api_route(bp, "/material-lots/<code>", method="PATCH", permission=WRITE,
           body=s.MaterialLotPatch, response=s.MaterialLotOut, status=200, tag="master data")
def update_material_lot(code: str, data: dict[str, Any]) -> MaterialLot:
    """Change a material lot's description or expiry."""
    session = db.session()
    return services.update_material_lot(session, current_user,
                                        services.get_material_lot(session, code), data)


@api_route(bp, "/material-lots/<code>/thaw", method="POST", permission=MATERIAL_USE,
           response=s.MaterialLotOut, status=200, tag="master data")
def thaw_material_lot(code: str) -> MaterialLot:
    """Record a material lot's removal from the freezer: `ready_at` is when it has thawed."""
    session = db.session()
    return services.thaw_material_lot(session, current_user,
                                      services.get_material_lot(session, code))


@api_route(bp, "/material-lots/<code>/open", method="POST", permission=MATERIAL_USE,
           response=s.MaterialLotOut, status=200, tag="master data")
def open_material_lot(code: str) -> MaterialLot:
    """Record the opening of a material lot: its work life starts (`expires_at`)."""
    session = db.session()
    return services.open_material_lot(session, current_user,
                                      services.get_material_lot(session, code))


# --- bills of materials ----------------------------------------------------------------

@api_route(bp, "/products/<code>/bom", method="POST", permission=WRITE, body=s.BomIn,
           response=s.BomOut, tag="master data")
def create_bom(code: str, data: dict[str, Any]) -> Any:
    """Create a BOM revision of the product; it is current for lots received from now on."""
    session = db.session()
    return services.create_bom(session, current_user, services.get_product(session, code),
                               data)


@api_route(bp, "/products/<code>/bom", permission=READ, query=s.BomQuery, response=s.BomOut,
           tag="master data")
def get_bom(code: str, args: dict[str, Any]) -> Any:
    """A revision of the product's BOM (`revision`, default the current one)."""
    session = db.session()
    return services.get_bom(session, services.get_product(session, code), args["revision"])
