"""preventive maintenance

PM plans of a tool, by calendar (every N days) or by use (every N units processed on it)
(pm_plan), the PMs recorded (pm_record), and on the tool the units it processed and when
its first PM falls due (equipment.units_processed, pm_due_at, pm_due_units).

Revision ID: 0024
Revises: 0026
Create Date: 2026-12-06 18:00:00.000000
"""
import sqlalchemy as sa
from alembic import op

revision = '0024'
down_revision = '0026'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('equipment', schema=None) as batch_op:
        batch_op.add_column(sa.Column('units_processed', sa.BigInteger(), server_default='0',
                                      nullable=False))
        batch_op.add_column(sa.Column('pm_due_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('pm_due_units', sa.BigInteger(), nullable=True))

    op.create_table(
        'pm_plan',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('equipment_id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=80), nullable=False),
        sa.Column('every_days', sa.Integer(), nullable=True),
        sa.Column('every_units', sa.BigInteger(), nullable=True),
        sa.Column('since_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('since_units', sa.BigInteger(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('created_by', sa.String(length=80), nullable=True),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.CheckConstraint('(every_days IS NULL) <> (every_units IS NULL)',
                           name=op.f('ck_pm_plan_one_interval')),
        sa.CheckConstraint('every_days IS NULL OR every_days > 0',
                           name=op.f('ck_pm_plan_every_days')),
        sa.CheckConstraint('every_units IS NULL OR every_units > 0',
                           name=op.f('ck_pm_plan_every_units')),
        sa.ForeignKeyConstraint(['equipment_id'], ['equipment.id'],
                                name=op.f('fk_pm_plan_equipment_id_equipment')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_pm_plan')),
        sa.UniqueConstraint('equipment_id', 'name', name=op.f('uq_pm_plan_equipment_id_name')),
    )
    with op.batch_alter_table('pm_plan', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_pm_plan_equipment_id'), ['equipment_id'],
                              unique=False)

    op.create_table(
        'pm_record',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('plan_id', sa.Integer(), nullable=False),
        sa.Column('equipment_id', sa.Integer(), nullable=False),
        sa.Column('done_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('done_by', sa.String(length=80), nullable=True),
        sa.Column('notes', sa.Text(), nullable=False),
        sa.Column('due_since', sa.DateTime(timezone=True), nullable=True),
        sa.Column('units_since', sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(['equipment_id'], ['equipment.id'],
                                name=op.f('fk_pm_record_equipment_id_equipment')),
        sa.ForeignKeyConstraint(['plan_id'], ['pm_plan.id'],
                                name=op.f('fk_pm_record_plan_id_pm_plan')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_pm_record')),
    )
    with op.batch_alter_table('pm_record', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_pm_record_equipment_id'), ['equipment_id'],
                              unique=False)
        batch_op.create_index(batch_op.f('ix_pm_record_plan_id'), ['plan_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('pm_record', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_pm_record_plan_id'))
        batch_op.drop_index(batch_op.f('ix_pm_record_equipment_id'))
    op.drop_table('pm_record')
    with op.batch_alter_table('pm_plan', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_pm_plan_equipment_id'))
    op.drop_table('pm_plan')
    with op.batch_alter_table('equipment', schema=None) as batch_op:
        batch_op.drop_column('pm_due_units')
        batch_op.drop_column('pm_due_at')
        batch_op.drop_column('units_processed')
