"""page indexes

Indexes for the pages of a plant of a million lots (bench/pages.py). No table or column
changes.
- ix_lot_held (new, partial): the lots on hold, most urgent first; the WIP board filtered
  on holds lists and counts them from it instead of scanning every lot.
- ix_lot_customer_state and ix_test_run_created_at include the row ids on PostgreSQL, so
  the portal's yields (a customer's lots, the latest run of each at each step) read both
  indexes alone.

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

TEST_RUN_INCLUDE = ['lot_id', 'product_id', 'step_code', 'units', 'first_pass_good',
                    'final_good']


def upgrade() -> None:
    op.create_index('ix_lot_held', 'lot', ['priority', 'due_date', 'id'], unique=False,
                    postgresql_include=['state', 'step_code', 'route_id', 'quantity',
                                        'open_holds'],
                    postgresql_where=sa.text('open_holds > 0'),
                    sqlite_where=sa.text('open_holds > 0'))
    op.drop_index('ix_lot_customer_state', table_name='lot')
    op.create_index('ix_lot_customer_state', 'lot', ['customer_id', 'state'], unique=False,
                    postgresql_include=['id'])
    op.drop_index('ix_test_run_created_at', table_name='test_run')
    op.create_index('ix_test_run_created_at', 'test_run', ['created_at'], unique=False,
                    postgresql_include=[*TEST_RUN_INCLUDE, 'id'])


def downgrade() -> None:
    op.drop_index('ix_test_run_created_at', table_name='test_run')
    op.create_index('ix_test_run_created_at', 'test_run', ['created_at'], unique=False,
                    postgresql_include=TEST_RUN_INCLUDE)
    op.drop_index('ix_lot_customer_state', table_name='lot')
    op.create_index('ix_lot_customer_state', 'lot', ['customer_id', 'state'], unique=False)
    op.drop_index('ix_lot_held', table_name='lot')
