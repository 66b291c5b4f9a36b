"""reason code steps, operator's runs

A reason code may name the route steps (`steps`, step codes) and step kinds (`step_kinds`)
it applies to; both empty means everywhere. The operator station offers a step's own reject
reasons first and the others on request. Existing codes apply everywhere.

An index on step runs by operator and start: the station finds the tools an operator worked
on this shift, whose steps' queue it shows.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-06 15:00:00.000000
"""
from alembic import op
import sqlalchemy as sa

revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('reason_code', schema=None) as batch_op:
        batch_op.add_column(sa.Column('steps', sa.JSON(), nullable=False,
                                      server_default=sa.text("'[]'")))
        batch_op.add_column(sa.Column('step_kinds', sa.JSON(), nullable=False,
                                      server_default=sa.text("'[]'")))
    with op.batch_alter_table('step_run', schema=None) as batch_op:
        batch_op.create_index('ix_step_run_operator_time', ['operator', 'started_at'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('step_run', schema=None) as batch_op:
        batch_op.drop_index('ix_step_run_operator_time')
    with op.batch_alter_table('reason_code', schema=None) as batch_op:
        batch_op.drop_column('step_kinds')
        batch_op.drop_column('steps')
