"""product changes and product change notifications

Changes to products classified against AEC-Q100's change table (product_change), the
products, BOM revisions and BOM items each alters (product_change_product), and the PCNs
sent to automotive customers with their answers (pcn).

Revision ID: 0026
Revises: 0022
Create Date: 2026-12-06 18:00:00.000000
"""
import sqlalchemy as sa
from alembic import op

revision = '0026'
down_revision = '0022'
branch_labels = None
depends_on = None

CHANGE_KINDS = "'material', 'process', 'site', 'design', 'test'"
PCN_STATUSES = "'pending', 'approved', 'rejected'"


def upgrade() -> None:
    op.create_table(
        'product_change',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('title', sa.String(length=200), nullable=False),
        sa.Column('kind', sa.String(length=20), nullable=False),
        sa.Column('description', sa.Text(), nullable=False),
        sa.Column('bom_revision', sa.String(length=20), nullable=True),
        sa.Column('required_stresses', sa.JSON(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('created_by', sa.String(length=80), nullable=True),
        sa.CheckConstraint(f'kind IN ({CHANGE_KINDS})', name=op.f('ck_product_change_kind')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_product_change')),
    )
    op.create_table(
        'product_change_product',
        sa.Column('change_id', sa.Integer(), nullable=False),
        sa.Column('product_id', sa.Integer(), nullable=False),
        sa.Column('bom_id', sa.Integer(), nullable=True),
        sa.Column('items', sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(['bom_id'], ['bom.id'],
                                name=op.f('fk_product_change_product_bom_id_bom')),
        sa.ForeignKeyConstraint(['change_id'], ['product_change.id'],
                                name=op.f('fk_product_change_product_change_id_product_change')),
        sa.ForeignKeyConstraint(['product_id'], ['product.id'],
                                name=op.f('fk_product_change_product_product_id_product')),
        sa.PrimaryKeyConstraint('change_id', 'product_id', name=op.f('pk_product_change_product')),
        sa.UniqueConstraint('bom_id', name=op.f('uq_product_change_product_bom_id')),
    )
    with op.batch_alter_table('product_change_product', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_product_change_product_product_id'),
                              ['product_id'], unique=False)
    op.create_table(
        'pcn',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('change_id', sa.Integer(), nullable=False),
        sa.Column('customer_id', sa.Integer(), nullable=False),
        sa.Column('notice_days', sa.Integer(), nullable=False),
        sa.Column('sent_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('sent_by', sa.String(length=80), nullable=True),
        sa.Column('effective_date', sa.Date(), nullable=False),
        sa.Column('status', sa.String(length=10), nullable=False),
        sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('decided_by', sa.String(length=80), nullable=True),
        sa.Column('comment', sa.Text(), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.CheckConstraint(f'status IN ({PCN_STATUSES})', name=op.f('ck_pcn_status')),
        sa.ForeignKeyConstraint(['change_id'], ['product_change.id'],
                                name=op.f('fk_pcn_change_id_product_change')),
        sa.ForeignKeyConstraint(['customer_id'], ['customer.id'],
                                name=op.f('fk_pcn_customer_id_customer')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_pcn')),
        sa.UniqueConstraint('change_id', 'customer_id', name=op.f('uq_pcn_change_id_customer_id')),
    )
    with op.batch_alter_table('pcn', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_pcn_change_id'), ['change_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_pcn_customer_id'), ['customer_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('pcn', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_pcn_customer_id'))
        batch_op.drop_index(batch_op.f('ix_pcn_change_id'))
    op.drop_table('pcn')
    with op.batch_alter_table('product_change_product', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_product_change_product_product_id'))
    op.drop_table('product_change_product')
    op.drop_table('product_change')
