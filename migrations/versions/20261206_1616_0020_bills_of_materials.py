"""bills of materials and time-limited materials

BOM revisions of a product (bom, bom_item), the revision a lot was received with
(lot.bom_id), and on material lots the supplier part number, thawing and work-life clocks.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-06 16:16:42.701620
"""
from alembic import op
import sqlalchemy as sa


revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('bom',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('product_id', sa.Integer(), nullable=False),
    sa.Column('revision', sa.String(length=20), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=80), nullable=True),
    sa.ForeignKeyConstraint(['product_id'], ['product.id'], name=op.f('fk_bom_product_id_product')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_bom')),
    sa.UniqueConstraint('product_id', 'revision', name=op.f('uq_bom_product_id_revision'))
    )
    with op.batch_alter_table('bom', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_bom_product_id'), ['product_id'], unique=False)

    op.create_table('bom_item',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('bom_id', sa.Integer(), nullable=False),
    sa.Column('step', sa.String(length=40), nullable=False),
    sa.Column('material', sa.String(length=40), nullable=False),
    sa.Column('part_numbers', sa.JSON(), nullable=False),
    sa.Column('qty_per_unit', sa.Numeric(precision=12, scale=4, asdecimal=False), nullable=True),
    sa.ForeignKeyConstraint(['bom_id'], ['bom.id'], name=op.f('fk_bom_item_bom_id_bom')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_bom_item')),
    sa.UniqueConstraint('bom_id', 'step', 'material', name=op.f('uq_bom_item_bom_id_step_material'))
    )
    with op.batch_alter_table('bom_item', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_bom_item_bom_id'), ['bom_id'], unique=False)

    if op.get_bind().dialect.name == 'sqlite':
        # Added in place: rebuilding the lot table would drop its triggers (0011).
        op.execute('ALTER TABLE lot ADD COLUMN bom_id INTEGER '
                   'CONSTRAINT fk_lot_bom_id_bom REFERENCES bom (id)')
    else:
        with op.batch_alter_table('lot', schema=None) as batch_op:
            batch_op.add_column(sa.Column('bom_id', sa.Integer(), nullable=True))
            batch_op.create_foreign_key(batch_op.f('fk_lot_bom_id_bom'), 'bom', ['bom_id'],
                                        ['id'])

    with op.batch_alter_table('material_lot', schema=None) as batch_op:
        batch_op.add_column(sa.Column('part_number', sa.String(length=60), nullable=True))
        batch_op.add_column(sa.Column('thaw_minutes', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('work_life_hours', sa.Numeric(precision=7, scale=2, asdecimal=False), nullable=True))
        batch_op.add_column(sa.Column('thawing_since', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('opened_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f('ix_material_lot_part_number'), ['part_number'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('material_lot', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_material_lot_part_number'))
        batch_op.drop_column('opened_at')
        batch_op.drop_column('thawing_since')
        batch_op.drop_column('work_life_hours')
        batch_op.drop_column('thaw_minutes')
        batch_op.drop_column('part_number')

    if op.get_bind().dialect.name == 'sqlite':
        op.execute('ALTER TABLE lot DROP COLUMN bom_id')
    else:
        with op.batch_alter_table('lot', schema=None) as batch_op:
            batch_op.drop_constraint(batch_op.f('fk_lot_bom_id_bom'), type_='foreignkey')
            batch_op.drop_column('bom_id')

    with op.batch_alter_table('bom_item', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_bom_item_bom_id'))

    op.drop_table('bom_item')
    with op.batch_alter_table('bom', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_bom_product_id'))

    op.drop_table('bom')
