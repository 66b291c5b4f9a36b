"""lot closed totals

The lots out of WIP (completed, shipped, scrapped, merged), counted per state, last step,
product, customer and open hold, kept by triggers on `lot`: the WIP board's "out of WIP"
line reads a few rows instead of counting every closed lot of the plant's history.

The triggers fire only when a closed lot is inserted, deleted or changed, or a lot enters
or leaves a closed state; moves of lots in WIP do not touch the table. A group whose lots
all left it keeps its row with zero lots.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 12:15:00.000000
"""
import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

CLOSED = "('completed', 'shipped', 'scrapped', 'merged')"
KEY = "state, step_code, product_id, customer_id, held"

# The whole table from the lots as they are (the migration; bench/pages.py after its load).
FILL = f"""
INSERT INTO lot_closed_total ({KEY}, lots, quantity)
SELECT state, step_code, product_id, customer_id, open_holds > 0, count(*), sum(quantity)
FROM lot WHERE state IN {CLOSED}
GROUP BY state, step_code, product_id, customer_id, open_holds > 0
"""


def _add(row: str) -> str:
    return (f"INSERT INTO lot_closed_total ({KEY}, lots, quantity) VALUES "
            f"({row}.state, {row}.step_code, {row}.product_id, {row}.customer_id, "
            f"{row}.open_holds > 0, 1, {row}.quantity) "
            f"ON CONFLICT ({KEY}) DO UPDATE SET lots = lot_closed_total.lots + 1, "
            f"quantity = lot_closed_total.quantity + excluded.quantity")


def _remove(row: str) -> str:
    return (f"UPDATE lot_closed_total SET lots = lots - 1, quantity = quantity - "
            f"{row}.quantity WHERE state = {row}.state AND step_code = {row}.step_code "
            f"AND product_id = {row}.product_id AND customer_id = {row}.customer_id "
            f"AND held = ({row}.open_holds > 0)")


# Columns whose change moves a closed lot between groups or changes its units.
WATCHED = "state, step_code, product_id, customer_id, quantity, open_holds"
UPDATE_WHEN = f"OLD.state IN {CLOSED} OR NEW.state IN {CLOSED}"

POSTGRESQL = [
    f"""CREATE FUNCTION lot_closed_total_keep() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP <> 'INSERT' AND OLD.state IN {CLOSED} THEN
    {_remove('OLD')};
  END IF;
  IF TG_OP <> 'DELETE' AND NEW.state IN {CLOSED} THEN
    {_add('NEW')};
  END IF;
  RETURN NULL;
END $$""",
    f"""CREATE TRIGGER lot_closed_total_insert AFTER INSERT ON lot FOR EACH ROW
WHEN (NEW.state IN {CLOSED}) EXECUTE FUNCTION lot_closed_total_keep()""",
    f"""CREATE TRIGGER lot_closed_total_update AFTER UPDATE OF {WATCHED} ON lot FOR EACH ROW
WHEN ({UPDATE_WHEN}) EXECUTE FUNCTION lot_closed_total_keep()""",
    f"""CREATE TRIGGER lot_closed_total_delete AFTER DELETE ON lot FOR EACH ROW
WHEN (OLD.state IN {CLOSED}) EXECUTE FUNCTION lot_closed_total_keep()""",
]

SQLITE = [
    f"""CREATE TRIGGER lot_closed_total_insert AFTER INSERT ON lot
WHEN NEW.state IN {CLOSED} BEGIN {_add('NEW')}; END""",
    f"""CREATE TRIGGER lot_closed_total_update AFTER UPDATE OF {WATCHED} ON lot
WHEN {UPDATE_WHEN} BEGIN
  {_remove('OLD')} AND OLD.state IN {CLOSED};
  INSERT INTO lot_closed_total ({KEY}, lots, quantity)
  SELECT NEW.state, NEW.step_code, NEW.product_id, NEW.customer_id, NEW.open_holds > 0, 1,
         NEW.quantity WHERE NEW.state IN {CLOSED}
  ON CONFLICT ({KEY}) DO UPDATE SET lots = lot_closed_total.lots + 1,
  quantity = lot_closed_total.quantity + excluded.quantity;
END""",
    f"""CREATE TRIGGER lot_closed_total_delete AFTER DELETE ON lot
WHEN OLD.state IN {CLOSED} BEGIN {_remove('OLD')}; END""",
]


def upgrade() -> None:
    op.create_table(
        'lot_closed_total',
        sa.Column('state', sa.String(length=12), nullable=False),
        sa.Column('step_code', sa.String(length=40), nullable=False),
        sa.Column('product_id', sa.Integer(), nullable=False),
        sa.Column('customer_id', sa.Integer(), nullable=False),
        sa.Column('held', sa.Boolean(), nullable=False),
        sa.Column('lots', sa.Integer(), nullable=False),
        sa.Column('quantity', sa.BigInteger(), nullable=False),
        sa.CheckConstraint("state IN ('queued', 'running', 'completed', 'shipped', 'scrapped', "
                           "'merged')", name=op.f('ck_lot_closed_total_state')),
        sa.PrimaryKeyConstraint('state', 'step_code', 'product_id', 'customer_id', 'held',
                                name=op.f('pk_lot_closed_total')),
    )
    op.execute(FILL)
    for statement in (POSTGRESQL if op.get_bind().dialect.name == 'postgresql' else SQLITE):
        op.execute(statement)


def downgrade() -> None:
    for name in ('insert', 'update', 'delete'):
        op.execute(f"DROP TRIGGER lot_closed_total_{name}"
                   + (" ON lot" if op.get_bind().dialect.name == 'postgresql' else ""))
    if op.get_bind().dialect.name == 'postgresql':
        op.execute("DROP FUNCTION lot_closed_total_keep()")
    op.drop_table('lot_closed_total')
