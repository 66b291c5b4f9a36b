"""Shipping: shipments of completed lots to their customer."""
