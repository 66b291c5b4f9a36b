"""partner organisations and grants

A customer record's kind (customer.kind: `customer`, a chip owner, or `partner`, a Tier-1
or vehicle maker; existing rows are customers), the user role `partner`, and the grants a
chip owner gives a partner on one PO line or one vehicle program (partner_grant: exactly
one scope; revoking keeps the row; one active grant per partner and scope), and the index
of the WIP feed (ix_lot_feed: a customer's lots in the plant in lot order).

Revision ID: 0033
Revises: 0032
Create Date: 2026-12-06 22:30:00.000000
"""
import sqlalchemy as sa
from alembic import op

revision = '0033'
down_revision = "0032"
branch_labels = None
depends_on = None

ROLES = ('operator', 'engineer', 'qa', 'planner', 'admin', 'customer')
KINDS = ('customer', 'partner')
ACTIVE = 'revoked_at IS NULL'


def _listed(codes: tuple[str, ...]) -> str:
    return ', '.join(f"'{code}'" for code in codes)


def upgrade() -> None:
    with op.batch_alter_table('customer', schema=None) as batch_op:
        batch_op.add_column(sa.Column('kind', sa.String(length=12),
                                      server_default='customer', nullable=False))
        batch_op.create_check_constraint(op.f('ck_customer_kind'),
                                         f'kind IN ({_listed(KINDS)})')
    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_user_account_role'), type_='check')
        batch_op.create_check_constraint(op.f('ck_user_account_role'),
                                         f"role IN ({_listed((*ROLES, 'partner'))})")
    op.create_table(
        'partner_grant',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('owner_id', sa.Integer(), nullable=False),
        sa.Column('partner_id', sa.Integer(), nullable=False),
        sa.Column('order_line_id', sa.Integer(), nullable=True),
        sa.Column('vehicle_program', sa.String(length=60), nullable=True),
        sa.Column('granted_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('granted_by', sa.String(length=80), nullable=False),
        sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('revoked_by', sa.String(length=80), nullable=True),
        sa.CheckConstraint('(order_line_id IS NULL) <> (vehicle_program IS NULL)',
                           name=op.f('ck_partner_grant_one_scope')),
        sa.ForeignKeyConstraint(['order_line_id'], ['order_line.id'],
                                name=op.f('fk_partner_grant_order_line_id_order_line')),
        sa.ForeignKeyConstraint(['owner_id'], ['customer.id'],
                                name=op.f('fk_partner_grant_owner_id_customer')),
        sa.ForeignKeyConstraint(['partner_id'], ['customer.id'],
                                name=op.f('fk_partner_grant_partner_id_customer')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_partner_grant')),
    )
    op.create_index('ix_partner_grant_order_line_id', 'partner_grant', ['order_line_id'],
                    unique=False)
    op.create_index('ix_partner_grant_owner', 'partner_grant', ['owner_id', 'id'],
                    unique=False)
    op.create_index('ix_partner_grant_partner_id', 'partner_grant', ['partner_id'],
                    unique=False)
    line = f'{ACTIVE} AND order_line_id IS NOT NULL'
    op.create_index('ux_partner_grant_line', 'partner_grant', ['partner_id', 'order_line_id'],
                    unique=True, postgresql_where=sa.text(line), sqlite_where=sa.text(line))
    program = f'{ACTIVE} AND vehicle_program IS NOT NULL'
    op.create_index('ux_partner_grant_program', 'partner_grant',
                    ['partner_id', 'owner_id', 'vehicle_program'], unique=True,
                    postgresql_where=sa.text(program), sqlite_where=sa.text(program))
    # The WIP feed's lots of a customer, in lot order (a plain CREATE INDEX: no rebuild).
    feed = "state IN ('queued', 'running', 'banked')"
    op.create_index('ix_lot_feed', 'lot', ['customer_id', 'id'], unique=False,
                    postgresql_where=sa.text(feed), sqlite_where=sa.text(feed))


def downgrade() -> None:
    op.drop_index('ix_lot_feed', table_name='lot')
    op.drop_index('ux_partner_grant_program', table_name='partner_grant')
    op.drop_index('ux_partner_grant_line', table_name='partner_grant')
    op.drop_index('ix_partner_grant_partner_id', table_name='partner_grant')
    op.drop_index('ix_partner_grant_owner', table_name='partner_grant')
    op.drop_index('ix_partner_grant_order_line_id', table_name='partner_grant')
    op.drop_table('partner_grant')
    bind = op.get_bind()
    if bind.execute(sa.text("SELECT count(*) FROM user_account WHERE role = 'partner'")
                    ).scalar() or bind.execute(sa.text(
                        "SELECT count(*) FROM customer WHERE kind = 'partner'")).scalar():
        raise RuntimeError('Partner organisations and their users exist: deactivate and '
                           'remove them before going back before 0033.')
    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_user_account_role'), type_='check')
        batch_op.create_check_constraint(op.f('ck_user_account_role'),
                                         f'role IN ({_listed(ROLES)})')
    with op.batch_alter_table('customer', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_customer_kind'), type_='check')
        batch_op.drop_column('kind')
