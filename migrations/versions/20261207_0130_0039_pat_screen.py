"""PAT as a screen: named, versioned static PAT limit sets

pat_limit_version (one engineer's computation of static PAT limits for a product at a test
step: a name and a version counting up per product and step, unique), the per-test limits
pointing at it (pat_limit_set.version_id), the version a released test program carries
(test_program.pat_limit_version_id). The hold text `pat_escape` (the hold source `pat` and the text
`pat_fallout` came with 0038):
the CHECKs on hold.source and hold.text_code are rebuilt.

Revision ID: 0039
Revises: 0038
Create Date: 2026-12-07 01:30:00.000000
"""
import sqlalchemy as sa
from alembic import op


revision = '0039'
down_revision = '0038'
branch_labels = None
depends_on = None

HOLD_SOURCES = ('manual', 'mass', 'future', 'yield', 'sba', 'containment', 'spc',
                'test_program', 'pat')
TEXT_CODES = ('yield_below_min', 'sba_breach', 'program_mismatch', 'pat_fallout')


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
    op.create_table('pat_limit_version',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('product_id', sa.Integer(), nullable=False),
    sa.Column('step_code', sa.String(length=40), nullable=False),
    sa.Column('name', sa.String(length=80), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('method', sa.String(length=80), nullable=False),
    sa.Column('k', sa.Float(), nullable=False),
    sa.Column('source_lots', sa.JSON(), nullable=False),
    sa.Column('valid_until', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=80), nullable=True),
    sa.ForeignKeyConstraint(['product_id'], ['product.id'], name=op.f('fk_pat_limit_version_product_id_product')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_pat_limit_version')),
    sa.UniqueConstraint('product_id', 'step_code', 'version', name=op.f('uq_pat_limit_version_product_id_step_code_version'))
    )
    with op.batch_alter_table('pat_limit_set', schema=None) as batch_op:
        batch_op.add_column(sa.Column('version_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True))
        batch_op.create_index(batch_op.f('ix_pat_limit_set_version_id'), ['version_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_pat_limit_set_version_id_pat_limit_version'), 'pat_limit_version', ['version_id'], ['id'])
    with op.batch_alter_table('test_program', schema=None) as batch_op:
        batch_op.add_column(sa.Column('pat_limit_version_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_test_program_pat_limit_version_id_pat_limit_version'), 'pat_limit_version', ['pat_limit_version_id'], ['id'])

    _hold_checks(HOLD_SOURCES, TEXT_CODES + ('pat_escape',))


def downgrade() -> None:
    # Refused (the CHECK names itself) while holds of source `pat` exist: they have to be
    # dealt with by hand before going back.
    _hold_checks(HOLD_SOURCES, TEXT_CODES)
    with op.batch_alter_table('test_program', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_test_program_pat_limit_version_id_pat_limit_version'), type_='foreignkey')
        batch_op.drop_column('pat_limit_version_id')
    with op.batch_alter_table('pat_limit_set', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_pat_limit_set_version_id_pat_limit_version'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_pat_limit_set_version_id'))
        batch_op.drop_column('version_id')
    op.drop_table('pat_limit_version')
