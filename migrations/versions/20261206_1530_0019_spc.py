"""process control

Data collection plans, subgroups, versioned control limits and out-of-control events
(spc_plan, spc_subgroup, spc_limits, spc_event), and the hold source `spc` (the holds the
reaction plan places): the CHECK on hold.source is rebuilt with the new code.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-06 15:17:01.856142
"""
from alembic import op
import sqlalchemy as sa


revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None

HOLD_SOURCES = ('manual', 'mass', 'future', 'yield', 'sba', 'containment')


def _hold_sources(codes: tuple[str, ...]) -> None:
    listed = ', '.join(f"'{code}'" for code in codes)
    with op.batch_alter_table('hold', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_hold_source'), type_='check')
        batch_op.create_check_constraint(op.f('ck_hold_source'), f'source IN ({listed})')


def upgrade() -> None:
    op.create_table('spc_plan',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=40), nullable=False),
    sa.Column('step_code', sa.String(length=40), nullable=False),
    sa.Column('characteristic', sa.String(length=200), nullable=False),
    sa.Column('unit', sa.String(length=20), nullable=False),
    sa.Column('subgroup_size', sa.Integer(), nullable=False),
    sa.Column('chart', sa.String(length=10), nullable=False),
    sa.Column('frequency_hours', sa.Integer(), nullable=True),
    sa.Column('lsl', sa.Float(), nullable=True),
    sa.Column('usl', sa.Float(), nullable=True),
    sa.Column('target', sa.Float(), nullable=True),
    sa.Column('equipment_kind', sa.String(length=40), nullable=True),
    sa.Column('product_id', sa.Integer(), nullable=True),
    sa.Column('rules', sa.JSON(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('limits_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=80), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.CheckConstraint("chart IN ('xbar_r', 'xbar_s', 'i_mr')", name=op.f('ck_spc_plan_chart')),
    sa.ForeignKeyConstraint(['product_id'], ['product.id'], name=op.f('fk_spc_plan_product_id_product')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_spc_plan')),
    sa.UniqueConstraint('code', name=op.f('uq_spc_plan_code'))
    )
    with op.batch_alter_table('spc_plan', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_spc_plan_product_id'), ['product_id'], unique=False)
        batch_op.create_index('ix_spc_plan_step', ['step_code', 'active'], unique=False)

    op.create_table('spc_event',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('plan_id', sa.Integer(), nullable=False),
    sa.Column('equipment_id', sa.Integer(), nullable=False),
    sa.Column('rule', sa.Integer(), nullable=False),
    sa.Column('hits', sa.JSON(), nullable=False),
    sa.Column('subgroups', sa.JSON(), nullable=False),
    sa.Column('since', sa.DateTime(timezone=True), nullable=False),
    sa.Column('held_lots', sa.JSON(), nullable=False),
    sa.Column('shipped_lots', sa.JSON(), nullable=False),
    sa.Column('equipment_state_before', sa.String(length=20), nullable=True),
    sa.Column('state', sa.String(length=10), nullable=False),
    sa.Column('opened_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('opened_by', sa.String(length=80), nullable=True),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('closed_by', sa.String(length=80), nullable=True),
    sa.Column('cause', sa.Text(), nullable=True),
    sa.Column('action', sa.Text(), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.CheckConstraint("state IN ('open', 'closed')", name=op.f('ck_spc_event_state')),
    sa.ForeignKeyConstraint(['equipment_id'], ['equipment.id'], name=op.f('fk_spc_event_equipment_id_equipment')),
    sa.ForeignKeyConstraint(['plan_id'], ['spc_plan.id'], name=op.f('fk_spc_event_plan_id_spc_plan')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_spc_event'))
    )
    with op.batch_alter_table('spc_event', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_spc_event_equipment_id'), ['equipment_id'], unique=False)
        batch_op.create_index('ix_spc_event_plan_tool', ['plan_id', 'equipment_id', 'state'], unique=False)
        batch_op.create_index('ix_spc_event_state', ['state', 'id'], unique=False)

    op.create_table('spc_limits',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('plan_id', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('center', sa.Float(), nullable=False),
    sa.Column('ucl', sa.Float(), nullable=False),
    sa.Column('lcl', sa.Float(), nullable=False),
    sa.Column('r_center', sa.Float(), nullable=False),
    sa.Column('r_ucl', sa.Float(), nullable=False),
    sa.Column('r_lcl', sa.Float(), nullable=False),
    sa.Column('sigma', sa.Float(), nullable=False),
    sa.Column('subgroups', sa.Integer(), nullable=False),
    sa.Column('first_subgroup_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('last_subgroup_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('frozen_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('frozen_by', sa.String(length=80), nullable=True),
    sa.ForeignKeyConstraint(['plan_id'], ['spc_plan.id'], name=op.f('fk_spc_limits_plan_id_spc_plan')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_spc_limits')),
    sa.UniqueConstraint('plan_id', 'version', name=op.f('uq_spc_limits_plan_id_version'))
    )
    op.create_table('spc_subgroup',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('plan_id', sa.Integer(), nullable=False),
    sa.Column('lot_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('equipment_id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('values', sa.JSON(), nullable=False),
    sa.Column('mean', sa.Float(), nullable=False),
    sa.Column('spread', sa.Float(), nullable=True),
    sa.Column('out_of_spec', sa.JSON(), nullable=False),
    sa.Column('limits_id', sa.Integer(), nullable=True),
    sa.Column('violations', sa.JSON(), nullable=False),
    sa.Column('in_control', sa.Boolean(), nullable=True),
    sa.Column('event_id', sa.Integer(), nullable=True),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('by', sa.String(length=80), nullable=True),
    sa.ForeignKeyConstraint(['equipment_id'], ['equipment.id'], name=op.f('fk_spc_subgroup_equipment_id_equipment')),
    sa.ForeignKeyConstraint(['event_id'], ['spc_event.id'], name=op.f('fk_spc_subgroup_event_id_spc_event')),
    sa.ForeignKeyConstraint(['limits_id'], ['spc_limits.id'], name=op.f('fk_spc_subgroup_limits_id_spc_limits')),
    sa.ForeignKeyConstraint(['lot_id'], ['lot.id'], name=op.f('fk_spc_subgroup_lot_id_lot')),
    sa.ForeignKeyConstraint(['plan_id'], ['spc_plan.id'], name=op.f('fk_spc_subgroup_plan_id_spc_plan')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_spc_subgroup'))
    )
    with op.batch_alter_table('spc_subgroup', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_spc_subgroup_equipment_id'), ['equipment_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_spc_subgroup_lot_id'), ['lot_id'], unique=False)
        batch_op.create_index('ix_spc_subgroup_plan', ['plan_id', 'id'], unique=False)
        batch_op.create_index('ix_spc_subgroup_run', ['run_id', 'plan_id'], unique=False)
        batch_op.create_index('ix_spc_subgroup_tool', ['plan_id', 'equipment_id', 'in_control', 'id'], unique=False)
    _hold_sources(HOLD_SOURCES + ('spc',))


def downgrade() -> None:
    # Refused (the CHECK names itself) while holds of source `spc` exist: release is no
    # deletion, so those holds have to be dealt with by hand before going back.
    _hold_sources(HOLD_SOURCES)
    with op.batch_alter_table('spc_subgroup', schema=None) as batch_op:
        batch_op.drop_index('ix_spc_subgroup_tool')
        batch_op.drop_index('ix_spc_subgroup_run')
        batch_op.drop_index('ix_spc_subgroup_plan')
        batch_op.drop_index(batch_op.f('ix_spc_subgroup_lot_id'))
        batch_op.drop_index(batch_op.f('ix_spc_subgroup_equipment_id'))

    op.drop_table('spc_subgroup')
    op.drop_table('spc_limits')
    with op.batch_alter_table('spc_event', schema=None) as batch_op:
        batch_op.drop_index('ix_spc_event_state')
        batch_op.drop_index('ix_spc_event_plan_tool')
        batch_op.drop_index(batch_op.f('ix_spc_event_equipment_id'))

    op.drop_table('spc_event')
    with op.batch_alter_table('spc_plan', schema=None) as batch_op:
        batch_op.drop_index('ix_spc_plan_step')
        batch_op.drop_index(batch_op.f('ix_spc_plan_product_id'))

    op.drop_table('spc_plan')
