"""A packed lot for the label and scan tests: the worked example of a 30,000-unit lot at
5,000 units a reel: 6 reels, 2 dry bags of 3 reels, 1 box, 1 carton."""

from __future__ import annotations

from dataclasses import dataclass

from mes.catalog import services as cat
from mes.floor.models import Lot


@dataclass
class Packed:
    lot_no: str
    reels: list[str]
    bags: list[str]
    box: str
    carton: str


def mark(session, lot_no: str, date_code: str, trace_code: str) -> None:
    """Give a lot the date code and trace code its marking would have given it."""
    lot = session.query(Lot).filter_by(lot_no=lot_no).one()
    lot.date_code, lot.trace_code = date_code, trace_code
    lot.mark = f"{lot.product.code}\n{date_code} {trace_code}"
    session.commit()


def pack(session, api, completed, lot_no: str = "LOT-A", *, quantity: int = 30000,
         customer: str = "OEM", product: str = "P1", date_code: str = "2649",
         trace_code: str | None = None, customer_part: str | None = "OEM-778-A") -> Packed:
    """Complete, mark and pack a lot into reels of 5,000, bags of 3 reels, one box and one
    carton, through the API."""
    cat.update_product(session, "eng", cat.get_product(session, product),
                       {"standard_pack_qty": {"reel": 5000},
                        "customer_part_number": customer_part})
    session.commit()
    completed(lot_no, product=product, customer=customer, quantity=quantity)
    mark(session, lot_no, date_code, trace_code or f"T{lot_no[-4:]}".replace("-", "0"))
    op = api("operator")
    resp = op.post(f"/lots/{lot_no}/pack", json={"carrier": "reel"})
    assert resp.status_code == 201, resp.get_json()
    reels = [u["id"] for u in resp.get_json()["units"]]
    bags = [op.post("/pack-units", json={"kind": "bag", "children": reels[i:i + 3]})
            .get_json()["id"] for i in range(0, len(reels), 3)]
    box = op.post("/pack-units", json={"kind": "box", "children": bags}).get_json()["id"]
    carton = op.post("/pack-units", json={"kind": "carton", "children": [box]}).get_json()
    return Packed(lot_no, reels, bags, box, carton["id"])
