"""lot_forecast rewritten in place

A plant's forecast refresh rewrites every open lot's row (lot_forecast): without the index
on computed_at (no query looks rows up by it: staleness is judged per lot, joined to the
lot) and with room left in each page (fillfactor 50, PostgreSQL), each rewrite is a
heap-only update, touching no index.

Revision ID: 0036
Revises: 0035
Create Date: 2026-12-07 01:00:00.000000
"""
from alembic import op

revision = '0036'
down_revision = "0035"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index('ix_lot_forecast_computed_at', table_name='lot_forecast')
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE lot_forecast SET (fillfactor = 50)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE lot_forecast RESET (fillfactor)")
    op.create_index('ix_lot_forecast_computed_at', 'lot_forecast', ['computed_at'],
                    unique=False)
