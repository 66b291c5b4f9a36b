"""keyed audit trail

Audit records get their place in a numbered series (`series`, `number`, unique) and the
counters of those series (`audit_counter`, 64 series, each starting at 0); checkpoints are
rebuilt as keyed, numbered seals (`audit_checkpoint`: number, marks, digest, mac). The old
checkpoints were unkeyed digests that anyone able to write the database could recompute;
they are dropped. Existing records keep their hashes and have no number yet: `mes db
upgrade` keys them right after this migration (`mes audit rekey`, see the README).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06 12:00:00.000000
"""
from alembic import op
import sqlalchemy as sa

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None

SERIES = 64


def upgrade() -> None:
    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.add_column(sa.Column('series', sa.SmallInteger(), nullable=True))
        batch_op.add_column(sa.Column('number', sa.BigInteger(), nullable=True))
        batch_op.create_unique_constraint(batch_op.f('uq_audit_event_series_number'),
                                          ['series', 'number'])
    counter = op.create_table(
        'audit_counter',
        sa.Column('series', sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column('value', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('series', name=op.f('pk_audit_counter')),
    )
    op.bulk_insert(counter, [{'series': s, 'value': 0} for s in range(SERIES)])
    op.drop_table('audit_checkpoint')
    op.create_table(
        'audit_checkpoint',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('number', sa.BigInteger(), nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('marks', sa.JSON(), nullable=False),
        sa.Column('event_count', sa.BigInteger(), nullable=False),
        sa.Column('digest', sa.String(length=64), nullable=False),
        sa.Column('mac', sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_checkpoint')),
        sa.UniqueConstraint('number', name=op.f('uq_audit_checkpoint_number')),
    )


def downgrade() -> None:
    # The keyed checkpoints mean nothing to the earlier code; its records' hashes are
    # computed by the public formula again only by restoring a backup taken before the
    # upgrade (keyed records stay keyed).
    op.drop_table('audit_checkpoint')
    op.create_table(
        'audit_checkpoint',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('covers_until', sa.DateTime(timezone=True), nullable=False),
        sa.Column('max_event_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'),
                  nullable=False),
        sa.Column('event_count', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'),
                  nullable=False),
        sa.Column('digest', sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_checkpoint')),
    )
    op.drop_table('audit_counter')
    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_audit_event_series_number'), type_='unique')
        batch_op.drop_column('number')
        batch_op.drop_column('series')
