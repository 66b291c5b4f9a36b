"""tool states follow the work, track-in undo

Reason kind `downtime` (reason_code.kind); the downtime reason code a down state was entered
with (equipment_state_change.reason); the ideal units per hour of a route step, for OEE
performance (route_step.ideal_uph); the lot history event `track_in_abort`.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-06 16:00:00.000000
"""
import sqlalchemy as sa
from alembic import op

revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None

REASON_KINDS = ('reject', 'hold', 'scrap')
EVENT_KINDS = ('receive', 'track_in', 'track_out', 'split', 'split_from', 'merge',
               'merged_into', 'hold', 'release', 'rework', 'scrap', 'test_run',
               'moisture_open', 'moisture_seal', 'moisture_dry_storage', 'moisture_bake',
               'ship')


def _listed(codes: tuple[str, ...]) -> str:
    return ', '.join(f"'{code}'" for code in codes)


def _event_kinds(codes: tuple[str, ...]) -> tuple[str, ...]:
    at = codes.index('track_out') + 1
    return (*codes[:at], 'track_in_abort', *codes[at:])


def _checks(reason_kinds: tuple[str, ...], event_kinds: tuple[str, ...]) -> None:
    with op.batch_alter_table('reason_code', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_reason_code_kind'), type_='check')
        batch_op.create_check_constraint(op.f('ck_reason_code_kind'),
                                         f'kind IN ({_listed(reason_kinds)})')
    with op.batch_alter_table('lot_event', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_lot_event_kind'), type_='check')
        batch_op.create_check_constraint(op.f('ck_lot_event_kind'),
                                         f'kind IN ({_listed(event_kinds)})')


def upgrade() -> None:
    _checks((*REASON_KINDS, 'downtime'), _event_kinds(EVENT_KINDS))
    with op.batch_alter_table('equipment_state_change', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reason', sa.String(length=40), nullable=True))
    with op.batch_alter_table('route_step', schema=None) as batch_op:
        batch_op.add_column(sa.Column('ideal_uph', sa.Numeric(precision=10, scale=2,
                                                              asdecimal=False), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('route_step', schema=None) as batch_op:
        batch_op.drop_column('ideal_uph')
    with op.batch_alter_table('equipment_state_change', schema=None) as batch_op:
        batch_op.drop_column('reason')
    _checks(REASON_KINDS, EVENT_KINDS)
