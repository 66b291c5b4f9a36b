"""moisture control in the packaging house (J-STD-033)

The route step whose track-out starts a lot's exposure clock (route_step.moisture_start)
and a bake step's recipe (route_step.bake); a product's body thickness, peak reflow
temperature and manufacturer's exposure time (product.body_thickness_mm, peak_reflow_c,
met_hours); when a clock started and was last sealed (moisture_clock.started_at,
sealed_at; the state `not_started` a lot without a clock is shown in); the bakes of a lot
(moisture_bake).

Revision ID: 0029
Revises: 0027
Create Date: 2026-12-06 18:00:00.000000
"""
import sqlalchemy as sa
from alembic import op

revision = '0029'
down_revision = '0027'
branch_labels = None
depends_on = None

STATES = ('sealed', 'open', 'dry_storage')
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def _listed(codes: tuple[str, ...]) -> str:
    return ', '.join(f"'{code}'" for code in codes)


def upgrade() -> None:
    with op.batch_alter_table('route_step', schema=None) as batch_op:
        batch_op.add_column(sa.Column('moisture_start', sa.Boolean(),
                                      server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('bake', sa.JSON(), nullable=True))
    with op.batch_alter_table('product', schema=None) as batch_op:
        batch_op.add_column(sa.Column('body_thickness_mm', sa.Numeric(precision=4, scale=2,
                                                                      asdecimal=False),
                                      nullable=True))
        batch_op.add_column(sa.Column('peak_reflow_c', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('met_hours', sa.Numeric(precision=6, scale=2,
                                                              asdecimal=False),
                                      server_default='24', nullable=False))
    with op.batch_alter_table('moisture_clock', schema=None) as batch_op:
        batch_op.add_column(sa.Column('started_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('sealed_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.drop_constraint(op.f('ck_moisture_clock_state'), type_='check')
        batch_op.create_check_constraint(op.f('ck_moisture_clock_state'),
                                         f"state IN ({_listed((*STATES, 'not_started'))})")
    op.create_table(
        'moisture_bake',
        sa.Column('id', BIG_ID, nullable=False),
        sa.Column('lot_id', BIG_ID, nullable=False),
        sa.Column('temperature_c', sa.Numeric(precision=5, scale=1, asdecimal=False),
                  nullable=False),
        sa.Column('hours', sa.Numeric(precision=7, scale=2, asdecimal=False), nullable=False),
        sa.Column('rh_pct', sa.Numeric(precision=4, scale=1, asdecimal=False), nullable=True),
        sa.Column('required_hours', sa.Numeric(precision=7, scale=2, asdecimal=False),
                  nullable=False),
        sa.Column('short_exposure', sa.Boolean(), nullable=False),
        sa.Column('step_code', sa.String(length=40), nullable=True),
        sa.Column('baked_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('baked_by', sa.String(length=80), nullable=False),
        sa.ForeignKeyConstraint(['lot_id'], ['lot.id'], name=op.f('fk_moisture_bake_lot_id_lot')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_moisture_bake')),
    )
    op.create_index('ix_moisture_bake_lot_id', 'moisture_bake', ['lot_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_moisture_bake_lot_id', table_name='moisture_bake')
    op.drop_table('moisture_bake')
    with op.batch_alter_table('moisture_clock', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_moisture_clock_state'), type_='check')
        batch_op.create_check_constraint(op.f('ck_moisture_clock_state'),
                                         f'state IN ({_listed(STATES)})')
        batch_op.drop_column('sealed_at')
        batch_op.drop_column('started_at')
    with op.batch_alter_table('product', schema=None) as batch_op:
        batch_op.drop_column('met_hours')
        batch_op.drop_column('peak_reflow_c')
        batch_op.drop_column('body_thickness_mm')
    with op.batch_alter_table('route_step', schema=None) as batch_op:
        batch_op.drop_column('bake')
        batch_op.drop_column('moisture_start')
