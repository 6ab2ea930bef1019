"""erasure: shoppers can be forgotten, conversations keep anonymous outcomes, adapters are flagged for retraining

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('users') as batch:
        batch.add_column(sa.Column('forgotten_at', sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table('conversations') as batch:
        batch.add_column(sa.Column('outcome', sa.JSON(), nullable=True))
    with op.batch_alter_table('adapters') as batch:
        batch.add_column(sa.Column('retrain_reason', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('adapters') as batch:
        batch.drop_column('retrain_reason')
    with op.batch_alter_table('conversations') as batch:
        batch.drop_column('outcome')
    with op.batch_alter_table('users') as batch:
        batch.drop_column('forgotten_at')
