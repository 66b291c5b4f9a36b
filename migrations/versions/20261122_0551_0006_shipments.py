"""shipments

Shipments to customers and the lots each carried, with the quantity shipped; a lot ships
once (unique lot_id). New tables only: nothing on the existing tables changes.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22 05:51:26.889985
"""
import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('shipment',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('po', sa.String(length=60), nullable=False),
    sa.Column('vehicle_program', sa.String(length=60), nullable=True),
    sa.Column('shipped_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('shipped_by', sa.String(length=80), nullable=True),
    sa.ForeignKeyConstraint(['customer_id'], ['customer.id'],
                            name=op.f('fk_shipment_customer_id_customer')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_shipment'))
    )
    with op.batch_alter_table('shipment', schema=None) as batch_op:
        batch_op.create_index('ix_shipment_customer_shipped_at',
                              ['customer_id', 'shipped_at', 'id'], unique=False)
        batch_op.create_index('ix_shipment_shipped_at', ['shipped_at', 'id'], unique=False)

    op.create_table('shipment_lot',
    sa.Column('shipment_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'),
              nullable=False),
    sa.Column('lot_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['lot_id'], ['lot.id'], name=op.f('fk_shipment_lot_lot_id_lot')),
    sa.ForeignKeyConstraint(['shipment_id'], ['shipment.id'],
                            name=op.f('fk_shipment_lot_shipment_id_shipment')),
    sa.PrimaryKeyConstraint('shipment_id', 'lot_id', name=op.f('pk_shipment_lot')),
    sa.UniqueConstraint('lot_id', name=op.f('uq_shipment_lot_lot_id'))
    )


def downgrade() -> None:
    op.drop_table('shipment_lot')
    with op.batch_alter_table('shipment', schema=None) as batch_op:
        batch_op.drop_index('ix_shipment_shipped_at')
        batch_op.drop_index('ix_shipment_customer_shipped_at')
    op.drop_table('shipment')
