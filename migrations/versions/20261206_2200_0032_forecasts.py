"""completion forecasts

The duration distributions of route steps and hold reasons forecasts are drawn from
(forecast_distribution) and each open or banked lot's forecast (lot_forecast).

Revision ID: 0032
Revises: 0030
Create Date: 2026-12-06 22:00:00.000000
"""
import sqlalchemy as sa
from alembic import op

revision = '0032'
down_revision = '0030'
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table(
        'forecast_distribution',
        sa.Column('kind', sa.String(length=8), nullable=False),
        sa.Column('key', sa.String(length=90), nullable=False),
        sa.Column('source', sa.String(length=8), nullable=False),
        sa.Column('samples', sa.Integer(), nullable=False),
        sa.Column('points', sa.JSON(), nullable=False),
        sa.Column('expected_yield', sa.Double(), nullable=True),
        sa.Column('computed_at', sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("kind IN ('step', 'hold')",
                           name=op.f('ck_forecast_distribution_kind')),
        sa.CheckConstraint("source IN ('own', 'pooled', 'default')",
                           name=op.f('ck_forecast_distribution_source')),
        sa.PrimaryKeyConstraint('kind', 'key', name=op.f('pk_forecast_distribution')),
    )
    op.create_table(
        'lot_forecast',
        sa.Column('lot_id', BIG_ID, autoincrement=False, nullable=False),
        sa.Column('lot_version', sa.Integer(), nullable=False),
        sa.Column('p50_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('p90_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('expected_quantity', sa.Integer(), nullable=True),
        sa.Column('remaining_steps', sa.Integer(), nullable=False),
        sa.Column('on_hold', sa.Boolean(), nullable=False),
        sa.Column('computed_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['lot_id'], ['lot.id'], name=op.f('fk_lot_forecast_lot_id_lot')),
        sa.PrimaryKeyConstraint('lot_id', name=op.f('pk_lot_forecast')),
    )
    op.create_index('ix_lot_forecast_computed_at', 'lot_forecast', ['computed_at'],
                    unique=False)


def downgrade() -> None:
    op.drop_index('ix_lot_forecast_computed_at', table_name='lot_forecast')
    op.drop_table('lot_forecast')
    op.drop_table('forecast_distribution')
