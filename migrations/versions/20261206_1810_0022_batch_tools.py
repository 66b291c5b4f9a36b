"""batch tools

The lots a tool runs at once (equipment.capacity, 1 for every existing tool) and the units
it holds at once (equipment.unit_capacity, none by default).

Revision ID: 0022
Revises: 0025
Create Date: 2026-12-06 18:00:00.000000
"""
import sqlalchemy as sa
from alembic import op

revision = '0022'
down_revision = '0025'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('equipment', schema=None) as batch_op:
        batch_op.add_column(sa.Column('capacity', sa.Integer(), server_default='1',
                                      nullable=False))
        batch_op.add_column(sa.Column('unit_capacity', sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('equipment', schema=None) as batch_op:
        batch_op.drop_column('unit_capacity')
        batch_op.drop_column('capacity')
