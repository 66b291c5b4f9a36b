"""step names in Chinese

Route steps carry an optional Simplified Chinese name (route_step.name_zh), shown to users
whose language is zh_CN; the English name stays the reference. Reason codes already carry
description_zh. A nullable column on an existing table: no server default is needed.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22 07:20:00.000000
"""
import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('route_step', schema=None) as batch_op:
        batch_op.add_column(sa.Column('name_zh', sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('route_step', schema=None) as batch_op:
        batch_op.drop_column('name_zh')
