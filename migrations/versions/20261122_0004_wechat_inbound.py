"""wechat inbound messages, identities (openids) and clerk invites

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 06:00:00
"""
from alembic import op
import sqlalchemy as sa
import handlers.models


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('wechat_inbound',
    sa.Column('key', sa.String(length=160), nullable=False),
    sa.Column('reply', sa.JSON(), nullable=False),
    sa.Column('created_at', handlers.models.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_wechat_inbound'))
    )
    op.create_index(op.f('ix_wechat_inbound_created_at'), 'wechat_inbound', ['created_at'], unique=False)
    op.create_table('wechat_identity',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('appid', sa.String(length=64), nullable=False),
    sa.Column('openid', sa.String(length=64), nullable=False),
    sa.Column('unionid', sa.String(length=64), nullable=True),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('incentive_id', sa.Integer(), nullable=True),
    sa.Column('created_at', handlers.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], name=op.f('fk_wechat_identity_account_id_account'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['incentive_id'], ['incentive.id'], name=op.f('fk_wechat_identity_incentive_id_incentive'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_wechat_identity')),
    sa.UniqueConstraint('appid', 'openid', name='uq_wechat_identity_appid_openid')
    )
    op.create_index(op.f('ix_wechat_identity_account_id'), 'wechat_identity', ['account_id'], unique=False)
    op.create_index(op.f('ix_wechat_identity_unionid'), 'wechat_identity', ['unionid'], unique=False)
    op.create_table('clerk_invite',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('scene_hash', sa.String(length=64), nullable=False),
    sa.Column('organisation_id', sa.Integer(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=False),
    sa.Column('created_at', handlers.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', handlers.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('used_at', handlers.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('used_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['created_by_id'], ['account.id'], name=op.f('fk_clerk_invite_created_by_id_account')),
    sa.ForeignKeyConstraint(['organisation_id'], ['organisation.id'], name=op.f('fk_clerk_invite_organisation_id_organisation'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['used_by_id'], ['account.id'], name=op.f('fk_clerk_invite_used_by_id_account')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_clerk_invite')),
    sa.UniqueConstraint('scene_hash', name=op.f('uq_clerk_invite_scene_hash'))
    )
    op.create_index(op.f('ix_clerk_invite_organisation_id'), 'clerk_invite', ['organisation_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_clerk_invite_organisation_id'), table_name='clerk_invite')
    op.drop_table('clerk_invite')
    op.drop_index(op.f('ix_wechat_identity_unionid'), table_name='wechat_identity')
    op.drop_index(op.f('ix_wechat_identity_account_id'), table_name='wechat_identity')
    op.drop_table('wechat_identity')
    op.drop_index(op.f('ix_wechat_inbound_created_at'), table_name='wechat_inbound')
    op.drop_table('wechat_inbound')
