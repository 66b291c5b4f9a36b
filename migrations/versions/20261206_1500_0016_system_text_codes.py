"""system text codes

A hold's comment written by the system (a yield hold, an SBA hold) is also kept as a code
and its parameters, so that pages show it in the reader's language: hold.text_code (one of
mes.vocabulary.SystemText, CHECK ck_hold_text_code) and hold.text_params (JSON). Both are
NULL for comments people wrote and for rows written before; `comment` keeps the English.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06 15:00:00.000000
"""
import sqlalchemy as sa
from alembic import op

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None

CODES = ('yield_below_min', 'sba_breach')


def upgrade() -> None:
    with op.batch_alter_table('hold', schema=None) as batch_op:
        batch_op.add_column(sa.Column('text_code', sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column('text_params', sa.JSON(), nullable=True))
        listed = ', '.join(f"'{code}'" for code in CODES)
        batch_op.create_check_constraint(op.f('ck_hold_text_code'), f'text_code IN ({listed})')


def downgrade() -> None:
    with op.batch_alter_table('hold', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_hold_text_code'), type_='check')
        batch_op.drop_column('text_params')
        batch_op.drop_column('text_code')
