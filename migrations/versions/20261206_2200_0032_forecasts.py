"""completion forecasts

The duration distributions of route steps and hold reasons forecasts are drawn from
(forecast_distribution) and each open or banked lot's forecast (lot_forecast); each order line's status as last
announced (order_line_outlook).

Revision ID: 0032
Revises: 0031
Create Date: 2026-12-06 22:00:00.000000
"""
import sqlalchemy as sa
from alembic import op

revision = '0032'
down_revision = "0031"
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
        sa.Column('announced_p90_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['lot_id'], ['lot.id'], name=op.f('fk_lot_forecast_lot_id_lot')),
        sa.PrimaryKeyConstraint('lot_id', name=op.f('pk_lot_forecast')),
    )
    op.create_index('ix_lot_forecast_computed_at', 'lot_forecast', ['computed_at'],
                    unique=False)
    op.create_table(
        'order_line_outlook',
        sa.Column('line_id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('status', sa.String(length=10), nullable=False),
        sa.Column('projected_p50', sa.Integer(), nullable=False),
        sa.Column('projected_p90', sa.Integer(), nullable=False),
        sa.Column('computed_at', sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("status IN ('on_track', 'at_risk', 'short')",
                           name=op.f('ck_order_line_outlook_status')),
        sa.ForeignKeyConstraint(['line_id'], ['order_line.id'],
                                name=op.f('fk_order_line_outlook_line_id_order_line')),
        sa.PrimaryKeyConstraint('line_id', name=op.f('pk_order_line_outlook')),
    )


def downgrade() -> None:
    op.drop_table('order_line_outlook')
    op.drop_index('ix_lot_forecast_computed_at', table_name='lot_forecast')
    op.drop_table('lot_forecast')
    op.drop_table('forecast_distribution')
