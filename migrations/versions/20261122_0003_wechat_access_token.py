"""wechat access token

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 04:10:00
"""
from alembic import op
import sqlalchemy as sa
import handlers.models


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('wechat_access_token',
    sa.Column('appid', sa.String(length=64), nullable=False),
    sa.Column('token', sa.String(length=512), nullable=False),
    sa.Column('expires_at', handlers.models.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('appid', name=op.f('pk_wechat_access_token'))
    )


def downgrade() -> None:
    op.drop_table('wechat_access_token')
