"""customer complaints and 8D

A customer's complaint (complaint), the failing units it names as scanned (complaint_unit),
the lots they resolve to (complaint_lot), the 8D steps D0..D8 worked on it (eightd_step) and
the containments run for it (complaint_containment).

Revision ID: 0034
Revises: 0033
Create Date: 2026-12-06 22:00:00.000000
"""
import sqlalchemy as sa
from alembic import op

revision = '0034'
down_revision = "0033"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
STATES = ('open', 'closed')
STEPS = ('D0', 'D1', 'D2', 'D3', 'D4', 'D5', 'D6', 'D7', 'D8')
SCAN_KINDS = ('lot', 'pack_unit', 'label', 'mark')


def _listed(codes: tuple[str, ...]) -> str:
    return ', '.join(f"'{code}'" for code in codes)


def upgrade() -> None:
    op.create_table(
        'complaint',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('customer_id', sa.Integer(), nullable=False),
        sa.Column('reference', sa.String(length=80), nullable=False),
        sa.Column('vehicle_program', sa.String(length=60), nullable=True),
        sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('description', sa.Text(), nullable=False),
        sa.Column('state', sa.String(length=10), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('created_by', sa.String(length=80), nullable=False),
        sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('closed_by', sa.String(length=80), nullable=True),
        sa.Column('internal_notes', sa.Text(), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.CheckConstraint(f'state IN ({_listed(STATES)})', name=op.f('ck_complaint_state')),
        sa.ForeignKeyConstraint(['customer_id'], ['customer.id'],
                                name=op.f('fk_complaint_customer_id_customer')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_complaint')),
        sa.UniqueConstraint('customer_id', 'reference',
                            name=op.f('uq_complaint_customer_id_reference')),
    )
    op.create_index(op.f('ix_complaint_customer_id'), 'complaint', ['customer_id'], unique=False)
    op.create_index('ix_complaint_state_received', 'complaint', ['state', 'received_at'],
                    unique=False)
    op.create_table(
        'complaint_unit',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('complaint_id', sa.Integer(), nullable=False),
        sa.Column('scan', sa.Text(), nullable=False),
        sa.Column('kind', sa.String(length=12), nullable=False),
        sa.Column('failure_mode', sa.String(length=200), nullable=False),
        sa.Column('count', sa.Integer(), nullable=False),
        sa.CheckConstraint(f'kind IN ({_listed(SCAN_KINDS)})',
                           name=op.f('ck_complaint_unit_kind')),
        sa.ForeignKeyConstraint(['complaint_id'], ['complaint.id'],
                                name=op.f('fk_complaint_unit_complaint_id_complaint')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_complaint_unit')),
    )
    op.create_index(op.f('ix_complaint_unit_complaint_id'), 'complaint_unit', ['complaint_id'],
                    unique=False)
    op.create_table(
        'complaint_lot',
        sa.Column('complaint_id', sa.Integer(), nullable=False),
        sa.Column('lot_id', BIG_ID, nullable=False),
        sa.Column('unit_id', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(['complaint_id'], ['complaint.id'],
                                name=op.f('fk_complaint_lot_complaint_id_complaint')),
        sa.ForeignKeyConstraint(['lot_id'], ['lot.id'], name=op.f('fk_complaint_lot_lot_id_lot')),
        sa.ForeignKeyConstraint(['unit_id'], ['complaint_unit.id'],
                                name=op.f('fk_complaint_lot_unit_id_complaint_unit')),
        sa.PrimaryKeyConstraint('complaint_id', 'lot_id', name=op.f('pk_complaint_lot')),
    )
    op.create_index('ix_complaint_lot_lot_id', 'complaint_lot', ['lot_id'], unique=False)
    op.create_table(
        'eightd_step',
        sa.Column('complaint_id', sa.Integer(), nullable=False),
        sa.Column('step', sa.String(length=2), nullable=False),
        sa.Column('owner_id', sa.Integer(), nullable=True),
        sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('done_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('done_by', sa.String(length=80), nullable=True),
        sa.Column('text', sa.Text(), nullable=False),
        sa.Column('internal_note', sa.Text(), nullable=False),
        sa.Column('root_cause_occurrence', sa.Text(), nullable=True),
        sa.Column('root_cause_escape', sa.Text(), nullable=True),
        sa.Column('verification', sa.Text(), nullable=True),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.CheckConstraint(f'step IN ({_listed(STEPS)})', name=op.f('ck_eightd_step_step')),
        sa.ForeignKeyConstraint(['complaint_id'], ['complaint.id'],
                                name=op.f('fk_eightd_step_complaint_id_complaint')),
        sa.ForeignKeyConstraint(['owner_id'], ['user_account.id'],
                                name=op.f('fk_eightd_step_owner_id_user_account')),
        sa.PrimaryKeyConstraint('complaint_id', 'step', name=op.f('pk_eightd_step')),
    )
    op.create_index('ix_eightd_step_open_due', 'eightd_step', ['done_at', 'due_at'],
                    unique=False)
    op.create_table(
        'complaint_containment',
        sa.Column('complaint_id', sa.Integer(), nullable=False),
        sa.Column('containment_id', sa.String(length=40), nullable=False),
        sa.Column('linked_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('linked_by', sa.String(length=80), nullable=False),
        sa.ForeignKeyConstraint(['complaint_id'], ['complaint.id'],
                                name=op.f('fk_complaint_containment_complaint_id_complaint')),
        sa.PrimaryKeyConstraint('complaint_id', 'containment_id',
                                name=op.f('pk_complaint_containment')),
    )
    op.create_index(op.f('ix_complaint_containment_containment_id'), 'complaint_containment',
                    ['containment_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_complaint_containment_containment_id'),
                  table_name='complaint_containment')
    op.drop_table('complaint_containment')
    op.drop_index('ix_eightd_step_open_due', table_name='eightd_step')
    op.drop_table('eightd_step')
    op.drop_index('ix_complaint_lot_lot_id', table_name='complaint_lot')
    op.drop_table('complaint_lot')
    op.drop_index(op.f('ix_complaint_unit_complaint_id'), table_name='complaint_unit')
    op.drop_table('complaint_unit')
    op.drop_index('ix_complaint_state_received', table_name='complaint')
    op.drop_index(op.f('ix_complaint_customer_id'), table_name='complaint')
    op.drop_table('complaint')
