"""returned units and failure analysis

Units a customer returned under a complaint (complaint_return), the failure analysis steps
run on them (failure_analysis) and the files attached to each step (analysis_attachment,
kept in the database). Containment matches gain date code, route version and BOM
revision (future_hold's match_kind CHECK lists them).

Revision ID: 0035
Revises: 0034
Create Date: 2026-12-06 22:10:00.000000
"""
import sqlalchemy as sa
from alembic import op

revision = '0035'
down_revision = "0034"
branch_labels = None
depends_on = None

RESULTS = ('pass', 'fail', 'finding')
MATCH_KINDS = ('fab_lot', 'wafer', 'material_lot', 'equipment', 'lots')
ATTRIBUTE_KINDS = ('date_code', 'route_version', 'bom_revision')


def _match_kinds(kinds: tuple[str, ...]) -> None:
    listed = ', '.join(f"'{code}'" for code in kinds)
    with op.batch_alter_table('future_hold', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_future_hold_match_kind'), type_='check')
        batch_op.create_check_constraint(op.f('ck_future_hold_match_kind'),
                                         f'match_kind IN ({listed})')


def upgrade() -> None:
    # Matches by date code, route version and BOM revision (mass holds and containments).
    _match_kinds(MATCH_KINDS + ATTRIBUTE_KINDS)
    op.create_table(
        'complaint_return',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('complaint_id', sa.Integer(), nullable=False),
        sa.Column('units', sa.Integer(), nullable=False),
        sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('created_by', sa.String(length=80), nullable=False),
        sa.ForeignKeyConstraint(['complaint_id'], ['complaint.id'],
                                name=op.f('fk_complaint_return_complaint_id_complaint')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_complaint_return')),
    )
    op.create_index(op.f('ix_complaint_return_complaint_id'), 'complaint_return',
                    ['complaint_id'], unique=False)
    listed = ', '.join(f"'{code}'" for code in RESULTS)
    op.create_table(
        'failure_analysis',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('return_id', sa.Integer(), nullable=False),
        sa.Column('step', sa.String(length=40), nullable=False),
        sa.Column('result', sa.String(length=10), nullable=False),
        sa.Column('notes', sa.Text(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('created_by', sa.String(length=80), nullable=False),
        sa.CheckConstraint(f'result IN ({listed})', name=op.f('ck_failure_analysis_result')),
        sa.ForeignKeyConstraint(['return_id'], ['complaint_return.id'],
                                name=op.f('fk_failure_analysis_return_id_complaint_return')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_failure_analysis')),
    )
    op.create_index(op.f('ix_failure_analysis_return_id'), 'failure_analysis', ['return_id'],
                    unique=False)
    op.create_table(
        'analysis_attachment',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('analysis_id', sa.Integer(), nullable=False),
        sa.Column('filename', sa.String(length=200), nullable=False),
        sa.Column('content_type', sa.String(length=60), nullable=False),
        sa.Column('size', sa.Integer(), nullable=False),
        sa.Column('sha256', sa.String(length=64), nullable=False),
        sa.Column('content', sa.LargeBinary(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ['analysis_id'], ['failure_analysis.id'],
            name=op.f('fk_analysis_attachment_analysis_id_failure_analysis')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_analysis_attachment')),
    )
    op.create_index(op.f('ix_analysis_attachment_analysis_id'), 'analysis_attachment',
                    ['analysis_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_analysis_attachment_analysis_id'), table_name='analysis_attachment')
    op.drop_table('analysis_attachment')
    op.drop_index(op.f('ix_failure_analysis_return_id'), table_name='failure_analysis')
    op.drop_table('failure_analysis')
    op.drop_index(op.f('ix_complaint_return_complaint_id'), table_name='complaint_return')
    op.drop_table('complaint_return')
    _match_kinds(MATCH_KINDS)
