"""report indexes

Indexes for the reports (mes/reports/models.py): each report of a date range reads an
index range on the time column; on PostgreSQL the columns it needs are included, so the
scan does not visit the table. No table or column changes.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-22 07:40:00.000000
"""
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_step_run_finished', 'step_run', ['finished_at'], unique=False,
                    postgresql_include=['lot_id', 'step_code', 'step_seq', 'equipment_id',
                                        'qty_in', 'good_qty', 'reject_qty', 'arrived_at',
                                        'started_at'])
    op.create_index('ix_lot_reject_at', 'lot_reject', ['at'], unique=False,
                    postgresql_include=['lot_id', 'step_code', 'reason_id', 'qty'])
    op.create_index('ix_equipment_state_change_at', 'equipment_state_change', ['at'],
                    unique=False, postgresql_include=['equipment_id', 'to_state'])
    op.create_index('ix_equipment_state_change_tool_at', 'equipment_state_change',
                    ['equipment_id', 'at', 'id'], unique=False)
    op.create_index('ix_hold_released_at', 'hold', ['released_at'], unique=False)
    op.create_index('ix_test_run_created_at', 'test_run', ['created_at'], unique=False,
                    postgresql_include=['lot_id', 'product_id', 'step_code', 'units',
                                        'first_pass_good', 'final_good'])
    op.create_index('ix_lot_state_arrived', 'lot', ['state', 'arrived_at'], unique=False,
                    postgresql_include=['created_at', 'product_id', 'customer_id'])
    op.create_index('ix_lot_updated', 'lot', ['updated_at'], unique=False,
                    postgresql_include=['id', 'product_id', 'customer_id', 'due_date'])


def downgrade() -> None:
    op.drop_index('ix_lot_updated', table_name='lot')
    op.drop_index('ix_lot_state_arrived', table_name='lot')
    op.drop_index('ix_test_run_created_at', table_name='test_run')
    op.drop_index('ix_hold_released_at', table_name='hold')
    op.drop_index('ix_equipment_state_change_tool_at', table_name='equipment_state_change')
    op.drop_index('ix_equipment_state_change_at', table_name='equipment_state_change')
    op.drop_index('ix_lot_reject_at', table_name='lot_reject')
    op.drop_index('ix_step_run_finished', table_name='step_run')
