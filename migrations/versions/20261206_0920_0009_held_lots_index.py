"""held lots index

The lots on hold, most urgent first: the WIP board filtered on holds (and its per-step
counts) reads this partial index instead of scanning every lot of the plant (a million
lots, a thousand on hold). No table or column changes.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 09:20:00.000000
"""
import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_lot_held', 'lot', ['priority', 'due_date', 'id'], unique=False,
                    postgresql_include=['state', 'step_code', 'route_id', 'quantity',
                                        'open_holds'],
                    postgresql_where=sa.text('open_holds > 0'),
                    sqlite_where=sa.text('open_holds > 0'))


def downgrade() -> None:
    op.drop_index('ix_lot_held', table_name='lot')
