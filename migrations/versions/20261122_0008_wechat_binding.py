"""wechat binding codes: an account binds the official-account openid that sends its code

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-22 09:00:00
"""
from alembic import op
import sqlalchemy as sa
import handlers.models


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('wechat_binding_code',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code_hash', sa.String(length=64), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('created_at', handlers.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', handlers.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('used_at', handlers.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('used_by_openid', sa.String(length=64), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], name=op.f('fk_wechat_binding_code_account_id_account'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_wechat_binding_code')),
    sa.UniqueConstraint('code_hash', name=op.f('uq_wechat_binding_code_code_hash'))
    )
    op.create_index(op.f('ix_wechat_binding_code_account_id'), 'wechat_binding_code', ['account_id'], unique=False)
    op.create_index(op.f('ix_wechat_binding_code_expires_at'), 'wechat_binding_code', ['expires_at'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_wechat_binding_code_expires_at'), table_name='wechat_binding_code')
    op.drop_index(op.f('ix_wechat_binding_code_account_id'), table_name='wechat_binding_code')
    op.drop_table('wechat_binding_code')
