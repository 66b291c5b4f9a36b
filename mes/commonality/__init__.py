"""Commonality analysis across complained lots, containment from a common factor, returned
units and their failure analysis."""
