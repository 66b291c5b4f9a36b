"""The small plant of the shop-floor tests (a 4-step route, products, tools, codes)."""

from tests.floor.conftest import plant, receive  # noqa: F401
