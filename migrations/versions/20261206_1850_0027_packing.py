"""marking, packing hierarchy, shipping by pack units

The marking step of a route (route_step.marks); a product's mark template, standard pack
quantities and customer part number; a lot's date code, trace code, mark text and packed /
shipped quantities; pack units (reels, trays, tubes, dry bags, boxes, cartons); a lot may
leave in several shipments (shipment_lot.lot_id no longer unique); the history event `pack`.

Revision ID: 0027
Revises: 0023
Create Date: 2026-12-06 18:00:00.000000
"""
import sqlalchemy as sa
from alembic import op

revision = '0027'
down_revision = '0023'
branch_labels = None
depends_on = None

EVENT_KINDS = ('receive', 'track_in', 'track_out', 'track_in_abort', 'split', 'split_from',
               'merge', 'merged_into', 'hold', 'release', 'rework', 'scrap', 'test_run',
               'moisture_open', 'moisture_seal', 'moisture_dry_storage', 'moisture_bake',
               'ship')
PACK_KINDS = ('reel', 'tray', 'tube', 'bag', 'box', 'carton')
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def _listed(codes: tuple[str, ...]) -> str:
    return ', '.join(f"'{code}'" for code in codes)


def _event_kinds(codes: tuple[str, ...]) -> None:
    with op.batch_alter_table('lot_event', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_lot_event_kind'), type_='check')
        batch_op.create_check_constraint(op.f('ck_lot_event_kind'),
                                         f'kind IN ({_listed(codes)})')


def upgrade() -> None:
    _event_kinds((*EVENT_KINDS, 'pack'))
    with op.batch_alter_table('route_step', schema=None) as batch_op:
        batch_op.add_column(sa.Column('marks', sa.Boolean(), server_default=sa.false(),
                                      nullable=False))
    with op.batch_alter_table('product', schema=None) as batch_op:
        batch_op.add_column(sa.Column('mark_template', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('standard_pack_qty', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('customer_part_number', sa.String(length=60),
                                      nullable=True))
    # Plain ADD COLUMN for lot: rebuilding it would drop its triggers on SQLite.
    op.add_column('lot', sa.Column('date_code', sa.String(length=4), nullable=True))
    op.add_column('lot', sa.Column('trace_code', sa.String(length=12), nullable=True))
    op.add_column('lot', sa.Column('mark', sa.Text(), nullable=True))
    op.add_column('lot', sa.Column('packed_qty', sa.Integer(), server_default='0',
                                   nullable=False))
    op.add_column('lot', sa.Column('shipped_qty', sa.Integer(), server_default='0',
                                   nullable=False))
    op.create_index(op.f('ix_lot_trace_code'), 'lot', ['trace_code'], unique=False)
    op.execute("UPDATE lot SET shipped_qty = quantity WHERE state = 'shipped'")
    with op.batch_alter_table('shipment_lot', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('uq_shipment_lot_lot_id'), type_='unique')
        batch_op.create_index('ix_shipment_lot_lot_id', ['lot_id'], unique=False)
    op.create_table(
        'pack_unit',
        sa.Column('id', BIG_ID, nullable=False),
        sa.Column('kind', sa.String(length=10), nullable=False),
        sa.Column('product_id', sa.Integer(), nullable=False),
        sa.Column('customer_id', sa.Integer(), nullable=False),
        sa.Column('lot_id', BIG_ID, nullable=True),
        sa.Column('quantity', sa.Integer(), nullable=False),
        sa.Column('parent_id', BIG_ID, nullable=True),
        sa.Column('sealed_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('shipment_id', BIG_ID, nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('created_by', sa.String(length=80), nullable=True),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.CheckConstraint(f'kind IN ({_listed(PACK_KINDS)})', name=op.f('ck_pack_unit_kind')),
        sa.CheckConstraint('quantity > 0', name=op.f('ck_pack_unit_quantity_positive')),
        sa.ForeignKeyConstraint(['customer_id'], ['customer.id'],
                                name=op.f('fk_pack_unit_customer_id_customer')),
        sa.ForeignKeyConstraint(['lot_id'], ['lot.id'], name=op.f('fk_pack_unit_lot_id_lot')),
        sa.ForeignKeyConstraint(['parent_id'], ['pack_unit.id'],
                                name=op.f('fk_pack_unit_parent_id_pack_unit')),
        sa.ForeignKeyConstraint(['product_id'], ['product.id'],
                                name=op.f('fk_pack_unit_product_id_product')),
        sa.ForeignKeyConstraint(['shipment_id'], ['shipment.id'],
                                name=op.f('fk_pack_unit_shipment_id_shipment')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_pack_unit')),
    )
    op.create_index('ix_pack_unit_lot_id', 'pack_unit', ['lot_id'], unique=False)
    op.create_index('ix_pack_unit_parent_id', 'pack_unit', ['parent_id'], unique=False)
    op.create_index('ix_pack_unit_shipment_id', 'pack_unit', ['shipment_id'], unique=False)
    op.create_index('ix_pack_unit_customer_id', 'pack_unit', ['customer_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_pack_unit_customer_id', table_name='pack_unit')
    op.drop_index('ix_pack_unit_shipment_id', table_name='pack_unit')
    op.drop_index('ix_pack_unit_parent_id', table_name='pack_unit')
    op.drop_index('ix_pack_unit_lot_id', table_name='pack_unit')
    op.drop_table('pack_unit')
    with op.batch_alter_table('shipment_lot', schema=None) as batch_op:
        batch_op.drop_index('ix_shipment_lot_lot_id')
        batch_op.create_unique_constraint(op.f('uq_shipment_lot_lot_id'), ['lot_id'])
    op.drop_index(op.f('ix_lot_trace_code'), table_name='lot')
    for column in ('shipped_qty', 'packed_qty', 'mark', 'trace_code', 'date_code'):
        op.drop_column('lot', column)
    with op.batch_alter_table('product', schema=None) as batch_op:
        batch_op.drop_column('customer_part_number')
        batch_op.drop_column('standard_pack_qty')
        batch_op.drop_column('mark_template')
    with op.batch_alter_table('route_step', schema=None) as batch_op:
        batch_op.drop_column('marks')
    op.execute("DELETE FROM lot_event WHERE kind = 'pack'")
    _event_kinds(EVENT_KINDS)
