"""A product's customer cannot change under lots still in the plant: receiving takes lots
of the product's customer only, so a product changing customer while another customer's
lots of it are queued, running or completed would leave lots that the product's own rule
refuses (`mes check` reports such a lot, tests/integrity/test_check.py)."""

from __future__ import annotations

from sqlalchemy import select

from mes.catalog.models import Customer, Product
from mes.shipping import services as shipping
from tests.helpers import audit_codes, refused


def _customer_of(session, code: str) -> str | None:
    session.expire_all()
    product = session.scalars(select(Product).where(Product.code == code)).one()
    return product.customer.code if product.customer else None


def test_a_product_with_lots_in_the_plant_cannot_change_customer(api, session, receive):
    lot = receive(100, lot_no="L-WIP", product="P1", customer="OEM")
    engineer = api("engineer")
    error = refused(session, lambda: engineer.patch("/products/P1", json={"customer": "IND"}),
                    409, "lots_in_wip")
    assert lot.lot_no in error["message"]
    assert _customer_of(session, "P1") == "OEM"
    assert audit_codes(session, "product", "P1") == ["product:create"]


def test_a_product_for_any_customer_cannot_be_narrowed_to_one_under_anothers_lots(
        api, session, receive):
    receive(50, lot_no="L-OEM", product="P2", customer="OEM")
    receive(50, lot_no="L-IND", product="P2", customer="IND")
    engineer = api("engineer")
    error = refused(session, lambda: engineer.patch("/products/P2", json={"customer": "OEM"}),
                    409, "lots_in_wip")
    assert "L-IND" in error["message"] and "L-OEM" not in error["message"]
    assert _customer_of(session, "P2") is None


def test_the_product_page_refuses_it_too(login, make_user, session, receive):
    receive(100, lot_no="L-WIP", product="P1", customer="OEM")
    client = login(make_user("engineer"))
    form = {"name": "Gate driver", "package": "QFN", "route": "QFN", "aec_grade": "1",
            "msl": "3", "customer": "IND"}
    page = refused(session, lambda: client.post("/catalog/products/P1/edit", data=form), 409)
    assert "L-WIP" in page
    assert _customer_of(session, "P1") == "OEM"


def test_what_leaves_no_lot_with_another_customer_is_allowed(api, session, receive,
                                                           completed):
    """Other changes with lots in the plant, the same customer, no customer (for any
    customer), and a new customer once the other customer's lots have left the plant."""
    receive(100, lot_no="L-WIP", product="P1", customer="OEM")
    engineer = api("engineer")
    assert engineer.patch("/products/P1", json={"name": "Gate driver B"}).status_code == 200
    assert engineer.patch("/products/P1", json={"customer": "OEM"}).status_code == 200
    assert engineer.patch("/products/P1", json={"customer": None}).status_code == 200
    assert _customer_of(session, "P1") is None
    done = completed("L-DONE", product="P2", customer="IND")
    shipping.create_shipment(session, "planner", {"customer": "IND", "po": "PO-1",
                                                  "lots": [done.lot_no]})
    session.commit()
    resp = engineer.patch("/products/P2", json={"customer": "OEM"})
    assert resp.status_code == 200, resp.get_json()
    assert _customer_of(session, "P2") == "OEM"
    assert session.scalar(select(Customer.code).join(Product, Product.customer_id
                                                     == Customer.id)
                          .where(Product.code == "P2")) == "OEM"
    assert audit_codes(session, "product", "P2")[-1] == "product:update"
