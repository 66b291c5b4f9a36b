"""orders and the die bank

Customers' purchase orders (purchase_order), their lines (order_line) and the lots
allocated to a line (order_allocation, one line per lot at most). The die bank: the lot
state `banked` (received, not released to the floor), the lot's planned start
(lot.planned_start) and the history event `bank_release`.

The lot table is not rebuilt on SQLite (that would drop its triggers, 0011): the column is
added in place, and the CHECKs of lot.state and lot_closed_total.state gain the new state by
rewriting their table's definition in place (SQLite's documented procedure for changes that
leave the stored rows as they are: writable_schema, a new schema version, an integrity
check).

Revision ID: 0030
Revises: 0029
Create Date: 2026-12-06 22:00:00.000000
"""
import re

import sqlalchemy as sa
from alembic import op

revision = '0030'
down_revision = "0029"
branch_labels = None
depends_on = None

LOT_STATES = ('queued', 'running', 'completed', 'shipped', 'scrapped', 'merged')
EVENT_KINDS = ('receive', 'track_in', 'track_out', 'track_in_abort', 'split', 'split_from',
               'merge', 'merged_into', 'hold', 'release', 'rework', 'scrap', 'test_run',
               'moisture_open', 'moisture_seal', 'moisture_dry_storage', 'moisture_bake',
               'ship', 'pack')
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def _listed(codes: tuple[str, ...]) -> str:
    return ', '.join(f"'{code}'" for code in codes)


def _sqlite_check(table: str, name: str, condition: str) -> None:
    """Replace the CHECK `name` of `table` in SQLite's stored definition of the table."""
    bind = op.get_bind()
    sql = bind.execute(sa.text("SELECT sql FROM sqlite_master WHERE type = 'table' "
                               "AND name = :table"), {'table': table}).scalar_one()
    pattern = re.compile(rf'CONSTRAINT {name} CHECK \(.*?\)\)')
    new_sql, replaced = pattern.subn(f'CONSTRAINT {name} CHECK ({condition})', sql)
    if replaced != 1:
        raise RuntimeError(f'{name} not found once in the definition of {table}')
    version = bind.execute(sa.text('PRAGMA schema_version')).scalar_one()
    bind.execute(sa.text('PRAGMA writable_schema = ON'))
    bind.execute(sa.text("UPDATE sqlite_master SET sql = :sql WHERE type = 'table' "
                         "AND name = :table"), {'sql': new_sql, 'table': table})
    bind.execute(sa.text(f'PRAGMA schema_version = {int(version) + 1}'))
    bind.execute(sa.text('PRAGMA writable_schema = OFF'))
    problems = bind.execute(sa.text('PRAGMA integrity_check')).scalars().all()
    if problems != ['ok']:
        raise RuntimeError(f'integrity check after changing {name}: {problems[:5]}')


def _lot_states(codes: tuple[str, ...]) -> None:
    for table in ('lot', 'lot_closed_total'):
        name = f'ck_{table}_state'
        condition = f'state IN ({_listed(codes)})'
        if op.get_bind().dialect.name == 'sqlite':
            _sqlite_check(table, name, condition)
        else:
            op.drop_constraint(op.f(name), table, type_='check')
            op.create_check_constraint(op.f(name), table, condition)


def _event_kinds(codes: tuple[str, ...]) -> None:
    with op.batch_alter_table('lot_event', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_lot_event_kind'), type_='check')
        batch_op.create_check_constraint(op.f('ck_lot_event_kind'),
                                         f'kind IN ({_listed(codes)})')


def upgrade() -> None:
    _lot_states((*LOT_STATES, 'banked'))
    _event_kinds((*EVENT_KINDS, 'bank_release'))
    # Plain ADD COLUMN for lot: rebuilding it would drop its triggers on SQLite.
    op.add_column('lot', sa.Column('planned_start', sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        'purchase_order',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('customer_id', sa.Integer(), nullable=False),
        sa.Column('po', sa.String(length=60), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('created_by', sa.String(length=80), nullable=True),
        sa.ForeignKeyConstraint(['customer_id'], ['customer.id'],
                                name=op.f('fk_purchase_order_customer_id_customer')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_purchase_order')),
        sa.UniqueConstraint('customer_id', 'po', name=op.f('uq_purchase_order_customer_id_po')),
    )
    op.create_index(op.f('ix_purchase_order_po'), 'purchase_order', ['po'], unique=False)
    op.create_table(
        'order_line',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('order_id', sa.Integer(), nullable=False),
        sa.Column('line_no', sa.Integer(), nullable=False),
        sa.Column('product_id', sa.Integer(), nullable=False),
        sa.Column('quantity', sa.Integer(), nullable=False),
        sa.Column('need_date', sa.Date(), nullable=False),
        sa.Column('commit_date', sa.Date(), nullable=True),
        sa.Column('vehicle_program', sa.String(length=60), nullable=True),
        sa.Column('ship_to', sa.String(length=120), nullable=True),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.CheckConstraint('line_no > 0', name=op.f('ck_order_line_line_no_positive')),
        sa.CheckConstraint('quantity > 0', name=op.f('ck_order_line_quantity_positive')),
        sa.ForeignKeyConstraint(['order_id'], ['purchase_order.id'],
                                name=op.f('fk_order_line_order_id_purchase_order')),
        sa.ForeignKeyConstraint(['product_id'], ['product.id'],
                                name=op.f('fk_order_line_product_id_product')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_order_line')),
        sa.UniqueConstraint('order_id', 'line_no', name=op.f('uq_order_line_order_id_line_no')),
    )
    op.create_index(op.f('ix_order_line_product_id'), 'order_line', ['product_id'],
                    unique=False)
    op.create_index(op.f('ix_order_line_vehicle_program'), 'order_line', ['vehicle_program'],
                    unique=False)
    op.create_table(
        'order_allocation',
        sa.Column('id', BIG_ID, nullable=False),
        sa.Column('lot_id', BIG_ID, nullable=False),
        sa.Column('line_id', sa.Integer(), nullable=False),
        sa.Column('allocated_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('allocated_by', sa.String(length=80), nullable=True),
        sa.ForeignKeyConstraint(['line_id'], ['order_line.id'],
                                name=op.f('fk_order_allocation_line_id_order_line')),
        sa.ForeignKeyConstraint(['lot_id'], ['lot.id'],
                                name=op.f('fk_order_allocation_lot_id_lot')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_order_allocation')),
        sa.UniqueConstraint('lot_id', name=op.f('uq_order_allocation_lot_id')),
    )
    op.create_index(op.f('ix_order_allocation_line_id'), 'order_allocation', ['line_id'],
                    unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_order_allocation_line_id'), table_name='order_allocation')
    op.drop_table('order_allocation')
    op.drop_index(op.f('ix_order_line_vehicle_program'), table_name='order_line')
    op.drop_index(op.f('ix_order_line_product_id'), table_name='order_line')
    op.drop_table('order_line')
    op.drop_index(op.f('ix_purchase_order_po'), table_name='purchase_order')
    op.drop_table('purchase_order')
    op.drop_column('lot', 'planned_start')
    # Lots still in the die bank go back to the queue of their first step; a release from
    # the bank becomes a receive-like note the older schema knows nothing of: removed.
    op.execute("DELETE FROM lot_event WHERE kind = 'bank_release'")
    op.execute("UPDATE lot SET state = 'queued' WHERE state = 'banked'")
    _event_kinds(EVENT_KINDS)
    _lot_states(LOT_STATES)
