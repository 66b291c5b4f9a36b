"""test run orphan PTRs

test_run.orphan_ptrs: the PTRs of an imported STDF file that belong to no part (no part was
open on their head and site, and none had closed there before them), shown on the run. Runs
imported before this count 0 (the count was not kept).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 12:00:00.000000
"""
import sqlalchemy as sa
from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('test_run', schema=None) as batch_op:
        batch_op.add_column(sa.Column('orphan_ptrs', sa.Integer(), nullable=False,
                                      server_default='0'))


def downgrade() -> None:
    with op.batch_alter_table('test_run', schema=None) as batch_op:
        batch_op.drop_column('orphan_ptrs')
