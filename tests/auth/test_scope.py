"""Customer scoping: a customer user's queries are limited to their customer, nobody
else's are."""

from __future__ import annotations

from sqlalchemy import select

from mes.auth.scope import scope_customer, scoped
from mes.catalog.models import Customer
from mes.floor.models import Lot


def test_customer_user_is_scoped_to_their_customer(make_user, session):
    user = make_user("customer", customer="CUST-S")
    customer = session.scalars(select(Customer).where(Customer.code == "CUST-S")).one()
    assert scope_customer(user) == customer.id
    stmt = scoped(select(Lot.id), Lot.customer_id, user)
    assert "lot.customer_id = " in str(stmt)
    assert stmt.compile().params == {"customer_id_1": customer.id}


def test_plant_users_and_system_actors_see_every_customer(make_user):
    for actor in (make_user("admin"), make_user("qa"), "system", None):
        assert scope_customer(actor) is None
        stmt = select(Lot.id)
        assert scoped(stmt, Lot.customer_id, actor) is stmt
