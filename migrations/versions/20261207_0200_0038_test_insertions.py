"""test insertions

A lot's test insertion at a test step (test_insertion: at most one open per lot and step, a
partial unique index), the run's insertion and pass (test_run.insertion_id, pass_kind,
pass_name) and its final soft bins (final_soft_bins, failing_soft_bins). Runs recorded
before stay without an insertion. The hold source `pat` and the hold text `pat_fallout`:
the CHECKs on hold.source and hold.text_code are rebuilt.

Revision ID: 0038
Revises: 0037
Create Date: 2026-12-07 01:59:00.000993
"""
import sqlalchemy as sa
from alembic import op


revision = '0038'
down_revision = '0037'
branch_labels = None
depends_on = None

HOLD_SOURCES = ('manual', 'mass', 'future', 'yield', 'sba', 'containment', 'spc',
                'test_program')
TEXT_CODES = ('yield_below_min', 'sba_breach', 'program_mismatch')


def _hold_checks(sources: tuple[str, ...], texts: tuple[str, ...]) -> None:
    with op.batch_alter_table('hold', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_hold_source'), type_='check')
        batch_op.create_check_constraint(
            op.f('ck_hold_source'), 'source IN ({})'.format(', '.join(f"'{c}'" for c in sources)))
        batch_op.drop_constraint(op.f('ck_hold_text_code'), type_='check')
        batch_op.create_check_constraint(
            op.f('ck_hold_text_code'),
            'text_code IN ({})'.format(', '.join(f"'{c}'" for c in texts)))


def upgrade() -> None:
    op.create_table('test_insertion',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('lot_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('product_id', sa.Integer(), nullable=False),
    sa.Column('step_code', sa.String(length=40), nullable=False),
    sa.Column('state', sa.String(length=6), nullable=False),
    sa.Column('opened_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('opened_by', sa.String(length=80), nullable=True),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('closed_by', sa.String(length=80), nullable=True),
    sa.Column('tracked_out_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('passes', sa.JSON(), nullable=False),
    sa.Column('units', sa.Integer(), nullable=False),
    sa.Column('first_pass_good', sa.Integer(), nullable=False),
    sa.Column('final_good', sa.Integer(), nullable=False),
    sa.Column('first_pass_yield', sa.Float(), nullable=True),
    sa.Column('final_yield', sa.Float(), nullable=True),
    sa.Column('final_hard_bins', sa.JSON(), nullable=False),
    sa.Column('final_soft_bins', sa.JSON(), nullable=False),
    sa.Column('pat', sa.JSON(), nullable=False),
    sa.Column('sba', sa.JSON(), nullable=True),
    sa.Column('proposal', sa.JSON(), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.CheckConstraint("state IN ('open', 'closed')", name=op.f('ck_test_insertion_state')),
    sa.ForeignKeyConstraint(['lot_id'], ['lot.id'], name=op.f('fk_test_insertion_lot_id_lot')),
    sa.ForeignKeyConstraint(['product_id'], ['product.id'], name=op.f('fk_test_insertion_product_id_product')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_test_insertion'))
    )
    with op.batch_alter_table('test_insertion', schema=None) as batch_op:
        batch_op.create_index('ix_test_insertion_lot', ['lot_id', 'step_code', 'id'], unique=False)
        batch_op.create_index('ix_test_insertion_open', ['lot_id', 'step_code'], unique=True, sqlite_where=sa.text("state = 'open'"), postgresql_where=sa.text("state = 'open'"))
        batch_op.create_index('ix_test_insertion_product_step', ['product_id', 'step_code', 'closed_at'], unique=False)

    with op.batch_alter_table('test_run', schema=None) as batch_op:
        batch_op.add_column(sa.Column('final_soft_bins', sa.JSON(), server_default='{}', nullable=False))
        batch_op.add_column(sa.Column('failing_soft_bins', sa.JSON(), server_default='[]', nullable=False))
        batch_op.add_column(sa.Column('insertion_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True))
        batch_op.add_column(sa.Column('pass_kind', sa.String(length=6), nullable=True))
        batch_op.add_column(sa.Column('pass_name', sa.String(length=8), nullable=True))
        batch_op.create_index(batch_op.f('ix_test_run_insertion_id'), ['insertion_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_test_run_insertion_id_test_insertion'), 'test_insertion', ['insertion_id'], ['id'])
        batch_op.create_check_constraint(
            op.f('ck_test_run_pass_kind'), "pass_kind IN ('first', 'retest', 'resume')")

    _hold_checks(HOLD_SOURCES + ('pat',), TEXT_CODES + ('pat_fallout',))


def downgrade() -> None:
    # Refused (the CHECK names itself) while holds of source `pat` exist.
    _hold_checks(HOLD_SOURCES, TEXT_CODES)
    with op.batch_alter_table('test_run', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_test_run_pass_kind'), type_='check')
        batch_op.drop_constraint(batch_op.f('fk_test_run_insertion_id_test_insertion'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_test_run_insertion_id'))
        batch_op.drop_column('pass_name')
        batch_op.drop_column('pass_kind')
        batch_op.drop_column('insertion_id')
        batch_op.drop_column('failing_soft_bins')
        batch_op.drop_column('final_soft_bins')

    with op.batch_alter_table('test_insertion', schema=None) as batch_op:
        batch_op.drop_index('ix_test_insertion_product_step')
        batch_op.drop_index('ix_test_insertion_open', sqlite_where=sa.text("state = 'open'"), postgresql_where=sa.text("state = 'open'"))
        batch_op.drop_index('ix_test_insertion_lot')

    op.drop_table('test_insertion')
