"""durables: consumables with counters

Durables (capillaries, saw blades, mold chases, load boards, sockets, probe cards) with their
life limit, warning level, used and reserved counts and the tool they are mounted on
(durable); every mount and removal (durable_mount); the uses a unit adds at a route step
(route_step.touchdowns_per_unit, default 1).

Revision ID: 0023
Revises: 0024
Create Date: 2026-12-06 18:00:00.000000
"""
import sqlalchemy as sa
from alembic import op

revision = '0023'
down_revision = '0024'
branch_labels = None
depends_on = None

DURABLE_KINDS = ('capillary', 'saw_blade', 'mold_chase', 'load_board', 'socket', 'probe_card')
DURABLE_ACTIONS = ('mount', 'unmount')


def _listed(codes: tuple[str, ...]) -> str:
    return ', '.join(f"'{code}'" for code in codes)


def upgrade() -> None:
    op.create_table(
        'durable',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('code', sa.String(length=40), nullable=False),
        sa.Column('kind', sa.String(length=20), nullable=False),
        sa.Column('life_limit', sa.BigInteger(), nullable=False),
        sa.Column('warn_at_pct', sa.Integer(), nullable=False),
        sa.Column('used', sa.BigInteger(), nullable=False),
        sa.Column('reserved', sa.BigInteger(), nullable=False),
        sa.Column('equipment_id', sa.Integer(), nullable=True),
        sa.Column('mounted_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(f'kind IN ({_listed(DURABLE_KINDS)})', name=op.f('ck_durable_kind')),
        sa.ForeignKeyConstraint(['equipment_id'], ['equipment.id'],
                                name=op.f('fk_durable_equipment_id_equipment')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_durable')),
        sa.UniqueConstraint('code', name=op.f('uq_durable_code')),
    )
    with op.batch_alter_table('durable', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_durable_equipment_id'), ['equipment_id'],
                              unique=False)
    op.create_table(
        'durable_mount',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('durable_id', sa.Integer(), nullable=False),
        sa.Column('equipment_id', sa.Integer(), nullable=False),
        sa.Column('action', sa.String(length=10), nullable=False),
        sa.Column('used', sa.BigInteger(), nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('by', sa.String(length=80), nullable=True),
        sa.CheckConstraint(f'action IN ({_listed(DURABLE_ACTIONS)})',
                           name=op.f('ck_durable_mount_action')),
        sa.ForeignKeyConstraint(['durable_id'], ['durable.id'],
                                name=op.f('fk_durable_mount_durable_id_durable')),
        sa.ForeignKeyConstraint(['equipment_id'], ['equipment.id'],
                                name=op.f('fk_durable_mount_equipment_id_equipment')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_durable_mount')),
    )
    with op.batch_alter_table('durable_mount', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_durable_mount_durable_id'), ['durable_id'],
                              unique=False)
        batch_op.create_index(batch_op.f('ix_durable_mount_equipment_id'), ['equipment_id'],
                              unique=False)
    with op.batch_alter_table('route_step', schema=None) as batch_op:
        batch_op.add_column(sa.Column('touchdowns_per_unit', sa.Integer(), server_default='1',
                                      nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('route_step', schema=None) as batch_op:
        batch_op.drop_column('touchdowns_per_unit')
    with op.batch_alter_table('durable_mount', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_durable_mount_equipment_id'))
        batch_op.drop_index(batch_op.f('ix_durable_mount_durable_id'))
    op.drop_table('durable_mount')
    with op.batch_alter_table('durable', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_durable_equipment_id'))
    op.drop_table('durable')
