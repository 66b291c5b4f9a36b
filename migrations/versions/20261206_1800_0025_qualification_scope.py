"""qualifications tied to what was built

The kind of a product (integrated circuit, discrete, multichip module: product.kind, every
existing product an integrated circuit) and its qualification family (product.qual_family);
the BOM revision and family a qualification covers (qualification.bom_id,
qualification.family); whether a stress's units were preconditioned
(qualification_test.preconditioned).

Revision ID: 0025
Revises: 0021
Create Date: 2026-12-06 18:00:00.000000
"""
import sqlalchemy as sa
from alembic import op

revision = '0025'
down_revision = '0021'
branch_labels = None
depends_on = None

PRODUCT_KINDS = ('ic', 'discrete', 'module')


def upgrade() -> None:
    with op.batch_alter_table('product', schema=None) as batch_op:
        batch_op.add_column(sa.Column('kind', sa.String(length=20), nullable=False,
                                      server_default='ic'))
        batch_op.add_column(sa.Column('qual_family', sa.String(length=40), nullable=True))
        batch_op.create_index(batch_op.f('ix_product_qual_family'), ['qual_family'],
                              unique=False)
        batch_op.create_check_constraint(
            op.f('ck_product_kind'), 'kind IN (' + ', '.join(f"'{k}'" for k in PRODUCT_KINDS)
            + ')')
    with op.batch_alter_table('product', schema=None) as batch_op:
        batch_op.alter_column('kind', server_default=None)
    with op.batch_alter_table('qualification', schema=None) as batch_op:
        batch_op.add_column(sa.Column('bom_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('family', sa.String(length=40), nullable=True))
        batch_op.create_index(batch_op.f('ix_qualification_bom_id'), ['bom_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_qualification_family'), ['family'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_qualification_bom_id_bom'), 'bom',
                                    ['bom_id'], ['id'])
    with op.batch_alter_table('qualification_test', schema=None) as batch_op:
        batch_op.add_column(sa.Column('preconditioned', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
    with op.batch_alter_table('qualification_test', schema=None) as batch_op:
        batch_op.alter_column('preconditioned', server_default=None)


def downgrade() -> None:
    with op.batch_alter_table('qualification_test', schema=None) as batch_op:
        batch_op.drop_column('preconditioned')
    with op.batch_alter_table('qualification', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_qualification_bom_id_bom'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_qualification_family'))
        batch_op.drop_index(batch_op.f('ix_qualification_bom_id'))
        batch_op.drop_column('family')
        batch_op.drop_column('bom_id')
    with op.batch_alter_table('product', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_product_kind'), type_='check')
        batch_op.drop_index(batch_op.f('ix_product_qual_family'))
        batch_op.drop_column('qual_family')
        batch_op.drop_column('kind')
