"""test programs, bin definitions, PAT test lists, voided test runs

The released test program of a product at a test step (test_program: one released row per
product and step, a partial unique index), the bin definitions, PAT fallout limit and PAT
test list of a product at a step (test_step_setup, test_bin), and the voiding of a test
run (test_run.voided_at, voided_by, void_reason). The hold source `test_program` and the
hold text `program_mismatch`: the CHECKs on hold.source and hold.text_code are rebuilt.

Revision ID: 0037
Revises: 0036
Create Date: 2026-12-07 01:00:00.000000
"""
import sqlalchemy as sa
from alembic import op


revision = '0037'
down_revision = '0036'
branch_labels = None
depends_on = None

HOLD_SOURCES = ('manual', 'mass', 'future', 'yield', 'sba', 'containment', 'spc')
TEXT_CODES = ('yield_below_min', 'sba_breach')


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
    op.create_table('test_program',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('product_id', sa.Integer(), nullable=False),
    sa.Column('step_code', sa.String(length=40), nullable=False),
    sa.Column('job_name', sa.String(length=255), nullable=False),
    sa.Column('job_rev', sa.String(length=255), nullable=False),
    sa.Column('temperature_c', sa.Float(), nullable=False),
    sa.Column('temperature_tolerance_c', sa.Float(), nullable=False),
    sa.Column('part_type', sa.String(length=255), nullable=True),
    sa.Column('pat_limit_set', sa.String(length=80), nullable=True),
    sa.Column('released_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('released_by', sa.String(length=80), nullable=True),
    sa.Column('superseded_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('superseded_by', sa.String(length=80), nullable=True),
    sa.ForeignKeyConstraint(['product_id'], ['product.id'], name=op.f('fk_test_program_product_id_product')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_test_program')),
    sa.UniqueConstraint('product_id', 'step_code', 'job_name', 'job_rev', name=op.f('uq_test_program_product_id_step_code_job_name_job_rev'))
    )
    with op.batch_alter_table('test_program', schema=None) as batch_op:
        batch_op.create_index('ix_test_program_released', ['product_id', 'step_code'], unique=True, sqlite_where=sa.text('superseded_at IS NULL'), postgresql_where=sa.text('superseded_at IS NULL'))

    op.create_table('test_step_setup',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('product_id', sa.Integer(), nullable=False),
    sa.Column('step_code', sa.String(length=40), nullable=False),
    sa.Column('pat_fallout_limit_pct', sa.Float(), nullable=False),
    sa.Column('pat_tests', sa.JSON(), nullable=True),
    sa.Column('bins_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('bins_by', sa.String(length=80), nullable=True),
    sa.Column('pat_tests_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('pat_tests_by', sa.String(length=80), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['product_id'], ['product.id'], name=op.f('fk_test_step_setup_product_id_product')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_test_step_setup')),
    sa.UniqueConstraint('product_id', 'step_code', name=op.f('uq_test_step_setup_product_id_step_code'))
    )
    op.create_table('test_bin',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('setup_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('kind', sa.String(length=4), nullable=False),
    sa.Column('bin', sa.Integer(), nullable=False),
    sa.Column('passing', sa.Boolean(), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('reason_id', sa.Integer(), nullable=True),
    sa.Column('sba', sa.Boolean(), nullable=False),
    sa.Column('pat', sa.Boolean(), nullable=False),
    sa.CheckConstraint("kind IN ('hard', 'soft')", name=op.f('ck_test_bin_kind')),
    sa.ForeignKeyConstraint(['reason_id'], ['reason_code.id'], name=op.f('fk_test_bin_reason_id_reason_code')),
    sa.ForeignKeyConstraint(['setup_id'], ['test_step_setup.id'], name=op.f('fk_test_bin_setup_id_test_step_setup')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_test_bin')),
    sa.UniqueConstraint('setup_id', 'kind', 'bin', name=op.f('uq_test_bin_setup_id_kind_bin'))
    )
    with op.batch_alter_table('test_bin', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_test_bin_setup_id'), ['setup_id'], unique=False)

    with op.batch_alter_table('test_run', schema=None) as batch_op:
        batch_op.add_column(sa.Column('voided_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('voided_by', sa.String(length=80), nullable=True))
        batch_op.add_column(sa.Column('void_reason', sa.Text(), nullable=True))

    _hold_checks(HOLD_SOURCES + ('test_program',), TEXT_CODES + ('program_mismatch',))


def downgrade() -> None:
    # Refused (the CHECK names itself) while holds of source `test_program` exist: they have
    # to be dealt with by hand before going back.
    _hold_checks(HOLD_SOURCES, TEXT_CODES)
    with op.batch_alter_table('test_run', schema=None) as batch_op:
        batch_op.drop_column('void_reason')
        batch_op.drop_column('voided_by')
        batch_op.drop_column('voided_at')

    with op.batch_alter_table('test_bin', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_test_bin_setup_id'))

    op.drop_table('test_bin')
    op.drop_table('test_step_setup')
    with op.batch_alter_table('test_program', schema=None) as batch_op:
        batch_op.drop_index('ix_test_program_released', sqlite_where=sa.text('superseded_at IS NULL'), postgresql_where=sa.text('superseded_at IS NULL'))

    op.drop_table('test_program')
