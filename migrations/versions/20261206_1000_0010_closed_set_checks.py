"""closed set checks

Every column that holds a code of a closed set (mes/vocabulary.py: lot states, event kinds,
hold sources, dispositions, E10 states, reason kinds ...) gets a CHECK constraint naming
its codes, ck_<table>_<column>: the database refuses any other value, whoever writes it.
The codes are spelled here as they are today; a new code is a new migration. Every value
the application has ever written is among them, so existing rows pass (a row that does
not stops the upgrade and names the constraint). SQLite rebuilds each table (batch mode).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 10:00:00.000000
"""
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

E10 = ('productive', 'standby', 'engineering', 'scheduled_down', 'unscheduled_down',
       'non_scheduled')

# table: {column: codes}
CHECKS: dict[str, dict[str, tuple[str, ...]]] = {
    'user_account': {
        'role': ('operator', 'engineer', 'qa', 'planner', 'admin', 'customer'),
        'locale': ('en', 'zh_CN'),
    },
    'route_step': {'kind': ('assembly', 'inspection', 'test', 'pack')},
    'product': {'msl': ('1', '2', '2a', '3', '4', '5', '5a', '6')},
    'equipment': {'state': E10},
    'equipment_state_change': {'from_state': E10, 'to_state': E10},
    'reason_code': {'kind': ('reject', 'hold', 'scrap')},
    'qualification': {
        'standard': ('AEC-Q100', 'AEC-Q101', 'AEC-Q104', 'AEC-Q200'),
        'status': ('passed', 'failed'),
    },
    'lot': {'state': ('queued', 'running', 'completed', 'shipped', 'scrapped', 'merged')},
    'lot_edge': {'kind': ('split', 'merge')},
    'lot_event': {'kind': (
        'receive', 'track_in', 'track_out', 'split', 'split_from', 'merge', 'merged_into',
        'hold', 'release', 'rework', 'scrap', 'test_run', 'moisture_open', 'moisture_seal',
        'moisture_dry_storage', 'moisture_bake', 'ship')},
    'hold': {
        'source': ('manual', 'mass', 'future', 'yield', 'sba', 'containment'),
        'status': ('open', 'released'),
        'disposition': ('release', 'rework', 'scrap', 'use_as_is'),
    },
    'future_hold': {
        'match_kind': ('fab_lot', 'wafer', 'material_lot', 'equipment', 'lots'),
        'status': ('active', 'retired'),
    },
    'moisture_clock': {'state': ('sealed', 'open', 'dry_storage')},
    'test_run': {'source': ('stdf', 'bins')},
}


def upgrade() -> None:
    for table, columns in CHECKS.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            for column, codes in columns.items():
                listed = ', '.join(f"'{code}'" for code in codes)
                batch_op.create_check_constraint(op.f(f'ck_{table}_{column}'),
                                                 f'{column} IN ({listed})')


def downgrade() -> None:
    for table, columns in reversed(CHECKS.items()):
        with op.batch_alter_table(table, schema=None) as batch_op:
            for column in columns:
                batch_op.drop_constraint(op.f(f'ck_{table}_{column}'), type_='check')
