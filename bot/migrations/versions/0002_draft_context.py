"""drafts keep what they were built from and the message sent from them

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 16:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('drafts') as batch:
        batch.add_column(sa.Column('meta', sa.JSON(), nullable=False, server_default='{}'))
        batch.add_column(sa.Column('message_id', sa.Integer(), nullable=True))
        batch.create_foreign_key('fk_drafts_message_id', 'messages', ['message_id'], ['id'])


def downgrade() -> None:
    with op.batch_alter_table('drafts') as batch:
        batch.drop_constraint('fk_drafts_message_id', type_='foreignkey')
        batch.drop_column('message_id')
        batch.drop_column('meta')
