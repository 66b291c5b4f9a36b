"""what customers see of holds and rejects

hold.customer_notified_at / customer_notified_by: when and by whom QA notified the customer
of the hold (the portal shows it from then on, whatever PORTAL_HOLD_POLICY).
reason_code.customer_category: what a customer reads of a reject or scrap under the code
(the customers' reject Pareto groups by it); existing codes start as 'other'.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06 15:00:00.000000
"""
import sqlalchemy as sa
from alembic import op

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None

CATEGORIES = ('assembly', 'test', 'visual', 'material', 'handling', 'other')


def upgrade() -> None:
    with op.batch_alter_table('hold', schema=None) as batch_op:
        batch_op.add_column(sa.Column('customer_notified_at', sa.DateTime(timezone=True),
                                      nullable=True))
        batch_op.add_column(sa.Column('customer_notified_by', sa.String(length=80),
                                      nullable=True))
    with op.batch_alter_table('reason_code', schema=None) as batch_op:
        batch_op.add_column(sa.Column('customer_category', sa.String(length=12),
                                      nullable=False, server_default='other'))
        listed = ', '.join(f"'{code}'" for code in CATEGORIES)
        batch_op.create_check_constraint(op.f('ck_reason_code_customer_category'),
                                         f'customer_category IN ({listed})')


def downgrade() -> None:
    with op.batch_alter_table('reason_code', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_reason_code_customer_category'), type_='check')
        batch_op.drop_column('customer_category')
    with op.batch_alter_table('hold', schema=None) as batch_op:
        batch_op.drop_column('customer_notified_by')
        batch_op.drop_column('customer_notified_at')
