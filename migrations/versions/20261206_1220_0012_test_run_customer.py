"""test run customer

test_run.customer_id: the lot's customer (a lot's customer never changes), filled from the
lots, so the portal's yields read a customer's runs of a window from one index
(ix_test_run_customer_created, with the columns they sum on PostgreSQL) instead of joining
every run of the window to the customer's lots.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 12:20:00.000000
"""
import sqlalchemy as sa
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('test_run', schema=None) as batch_op:
        batch_op.add_column(sa.Column('customer_id', sa.Integer(), nullable=True))
    op.execute("UPDATE test_run SET customer_id = "
               "(SELECT lot.customer_id FROM lot WHERE lot.id = test_run.lot_id)")
    with op.batch_alter_table('test_run', schema=None) as batch_op:
        batch_op.alter_column('customer_id', existing_type=sa.Integer(), nullable=False)
        batch_op.create_foreign_key(batch_op.f('fk_test_run_customer_id_customer'),
                                    'customer', ['customer_id'], ['id'])
    op.create_index('ix_test_run_customer_created', 'test_run', ['customer_id', 'created_at'],
                    unique=False, postgresql_include=['lot_id', 'product_id', 'step_code',
                                                      'units', 'final_good', 'id'])


def downgrade() -> None:
    op.drop_index('ix_test_run_customer_created', table_name='test_run')
    with op.batch_alter_table('test_run', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_test_run_customer_id_customer'),
                                 type_='foreignkey')
        batch_op.drop_column('customer_id')
