"""events outbox, webhook subscriptions and deliveries

The transactional outbox of events told to customers (outbox_event), the customers' webhook
subscriptions (webhook) and one delivery per event and subscription with its retry state
(webhook_delivery); when each of the worker's periodic jobs last ran (worker_job).

Revision ID: 0031
Revises: 0030
Create Date: 2026-12-06 22:00:00.000000
"""
import sqlalchemy as sa
from alembic import op

revision = '0031'
down_revision = "0030"
branch_labels = None
depends_on = None

EVENT_TYPES = ('lot.hold.placed', 'lot.hold.released', 'lot.eta.changed',
               'order.status.changed', 'shipment.created', 'containment.created',
               'complaint.created', 'eightd.step.completed', 'eightd.closed', 'pcn.sent',
               'pcn.decided')
DELIVERY_STATES = ('pending', 'delivered', 'failed')
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def _listed(codes: tuple[str, ...]) -> str:
    return ', '.join(f"'{code}'" for code in codes)


def upgrade() -> None:
    op.create_table(
        'outbox_event',
        sa.Column('id', BIG_ID, nullable=False),
        sa.Column('type', sa.String(length=40), nullable=False),
        sa.Column('customer_id', sa.Integer(), nullable=False),
        sa.Column('lot_id', BIG_ID, nullable=True),
        sa.Column('data', sa.JSON(), nullable=False),
        sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('dispatched_at', sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(f'type IN ({_listed(EVENT_TYPES)})',
                           name=op.f('ck_outbox_event_type')),
        sa.ForeignKeyConstraint(['customer_id'], ['customer.id'],
                                name=op.f('fk_outbox_event_customer_id_customer')),
        sa.ForeignKeyConstraint(['lot_id'], ['lot.id'], name=op.f('fk_outbox_event_lot_id_lot')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox_event')),
    )
    op.create_index(op.f('ix_outbox_event_customer_id'), 'outbox_event', ['customer_id'])
    op.create_index(op.f('ix_outbox_event_lot_id'), 'outbox_event', ['lot_id'])
    op.create_index(op.f('ix_outbox_event_dispatched_at'), 'outbox_event', ['dispatched_at'])
    op.create_table(
        'webhook',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('customer_id', sa.Integer(), nullable=False),
        sa.Column('url', sa.String(length=2000), nullable=False),
        sa.Column('events', sa.JSON(), nullable=False),
        sa.Column('secret', sa.String(length=100), nullable=False),
        sa.Column('active', sa.Boolean(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('created_by', sa.String(length=80), nullable=True),
        sa.Column('disabled_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('disabled_by', sa.String(length=80), nullable=True),
        sa.ForeignKeyConstraint(['customer_id'], ['customer.id'],
                                name=op.f('fk_webhook_customer_id_customer')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook')),
    )
    op.create_index(op.f('ix_webhook_customer_id'), 'webhook', ['customer_id'])
    op.create_table(
        'webhook_delivery',
        sa.Column('id', BIG_ID, nullable=False),
        sa.Column('webhook_id', sa.Integer(), nullable=False),
        sa.Column('event_id', BIG_ID, nullable=False),
        sa.Column('state', sa.String(length=10), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('last_status', sa.Integer(), nullable=True),
        sa.Column('last_error', sa.String(length=500), nullable=False),
        sa.Column('last_attempt_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('window_start', sa.DateTime(timezone=True), nullable=False),
        sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(f'state IN ({_listed(DELIVERY_STATES)})',
                           name=op.f('ck_webhook_delivery_state')),
        sa.ForeignKeyConstraint(['event_id'], ['outbox_event.id'],
                                name=op.f('fk_webhook_delivery_event_id_outbox_event')),
        sa.ForeignKeyConstraint(['webhook_id'], ['webhook.id'],
                                name=op.f('fk_webhook_delivery_webhook_id_webhook')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_delivery')),
        sa.UniqueConstraint('webhook_id', 'event_id',
                            name=op.f('uq_webhook_delivery_webhook_id_event_id')),
    )
    op.create_index(op.f('ix_webhook_delivery_webhook_id'), 'webhook_delivery', ['webhook_id'])
    op.create_index(op.f('ix_webhook_delivery_event_id'), 'webhook_delivery', ['event_id'])
    op.create_index('ix_webhook_delivery_state_next_attempt_at', 'webhook_delivery',
                    ['state', 'next_attempt_at'])
    op.create_table(
        'worker_job',
        sa.Column('name', sa.String(length=80), nullable=False),
        sa.Column('last_run_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('last_error', sa.String(length=500), nullable=False),
        sa.PrimaryKeyConstraint('name', name=op.f('pk_worker_job')),
    )


def downgrade() -> None:
    op.drop_table('worker_job')
    op.drop_table('webhook_delivery')
    op.drop_table('webhook')
    op.drop_table('outbox_event')
