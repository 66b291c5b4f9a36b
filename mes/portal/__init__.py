"""The customer portal: a customer user's read-only views of their own lots, holds,
shipments, yields and traces; every query is scoped to their customer."""
