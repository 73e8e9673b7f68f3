"""outbox messages, delivery attempts, contact points (push issue)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 08:00:00
"""
from datetime import UTC, datetime

from alembic import op
import sqlalchemy as sa
import handlers.models


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('contact_point',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.Enum('email', 'mobile', name='contact_kind', native_enum=False, create_constraint=True, length=24), nullable=False),
    sa.Column('address_sealed', sa.LargeBinary(), nullable=False),
    sa.Column('address_masked', sa.String(length=64), nullable=False),
    sa.Column('address_hash', sa.String(length=64), nullable=False),
    sa.Column('consent_text', sa.Text(), nullable=False),
    sa.Column('consent_at', handlers.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_at', handlers.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], name=op.f('fk_contact_point_account_id_account'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_contact_point')),
    sa.UniqueConstraint('account_id', 'kind', name='uq_contact_point_account_id_kind')
    )
    op.create_index(op.f('ix_contact_point_address_hash'), 'contact_point', ['address_hash'], unique=False)
    op.create_table('outbox_message',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('dedupe_key', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('notice_id', sa.Integer(), nullable=True),
    sa.Column('account_id', sa.Integer(), nullable=True),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('channels', sa.JSON(), nullable=False),
    sa.Column('channel_index', sa.Integer(), nullable=False),
    sa.Column('channel', sa.Enum('subscribe', 'template', 'email', 'sms', name='channel', native_enum=False, create_constraint=True, length=24), nullable=False),
    sa.Column('address_sealed', sa.LargeBinary(), nullable=True),
    sa.Column('address_masked', sa.String(length=64), nullable=True),
    sa.Column('state', sa.Enum('pending', 'sent', 'dead', name='outbox_state', native_enum=False, create_constraint=True, length=24), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', handlers.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('lease_until', handlers.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('leased_by', sa.String(length=64), nullable=True),
    sa.Column('last_error', sa.String(length=300), nullable=True),
    sa.Column('external_id', sa.String(length=200), nullable=True),
    sa.Column('created_at', handlers.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('sent_at', handlers.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('dead_at', handlers.models.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], name=op.f('fk_outbox_message_account_id_account'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['notice_id'], ['notice.id'], name=op.f('fk_outbox_message_notice_id_notice'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox_message')),
    sa.UniqueConstraint('dedupe_key', name=op.f('uq_outbox_message_dedupe_key'))
    )
    op.create_index(op.f('ix_outbox_message_account_id'), 'outbox_message', ['account_id'], unique=False)
    op.create_index('ix_outbox_message_due', 'outbox_message', ['next_attempt_at'], unique=False, sqlite_where=sa.text("state = 'pending'"), postgresql_where=sa.text("state = 'pending'"))
    op.create_index(op.f('ix_outbox_message_notice_id'), 'outbox_message', ['notice_id'], unique=False)
    op.create_index('ix_outbox_message_state_id', 'outbox_message', ['state', 'id'], unique=False)
    op.create_table('outbox_attempt',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('message_id', sa.Integer(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('channel', sa.Enum('subscribe', 'template', 'email', 'sms', name='channel', native_enum=False, create_constraint=True, length=24), nullable=False),
    sa.Column('outcome', sa.String(length=16), nullable=False),
    sa.Column('errcode', sa.Integer(), nullable=True),
    sa.Column('reply', sa.String(length=500), nullable=True),
    sa.Column('worker', sa.String(length=64), nullable=True),
    sa.Column('started_at', handlers.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('finished_at', handlers.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['message_id'], ['outbox_message.id'], name=op.f('fk_outbox_attempt_message_id_outbox_message'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox_attempt'))
    )
    op.create_index(op.f('ix_outbox_attempt_message_id'), 'outbox_attempt', ['message_id'], unique=False)
    op.add_column('notice', sa.Column('page', sa.String(length=200), nullable=True))
    op.add_column('notice', sa.Column('fanout_at', handlers.models.UTCDateTime(timezone=True), nullable=True))
    op.create_index('ix_notice_fanout_pending', 'notice', ['id'], unique=False, sqlite_where=sa.text('fanout_at IS NULL'), postgresql_where=sa.text('fanout_at IS NULL'))

    # Notices written before the outbox existed were shown in the app already: do not push them now.
    notice = sa.table('notice', sa.column('fanout_at', handlers.models.UTCDateTime(timezone=True)))
    op.execute(notice.update().values(fanout_at=datetime.now(UTC)))


def downgrade() -> None:
    op.drop_index('ix_notice_fanout_pending', table_name='notice', sqlite_where=sa.text('fanout_at IS NULL'), postgresql_where=sa.text('fanout_at IS NULL'))
    with op.batch_alter_table('notice') as batch:
        batch.drop_column('fanout_at')
        batch.drop_column('page')
    op.drop_index(op.f('ix_outbox_attempt_message_id'), table_name='outbox_attempt')
    op.drop_table('outbox_attempt')
    op.drop_index('ix_outbox_message_state_id', table_name='outbox_message')
    op.drop_index(op.f('ix_outbox_message_notice_id'), table_name='outbox_message')
    op.drop_index('ix_outbox_message_due', table_name='outbox_message', sqlite_where=sa.text("state = 'pending'"), postgresql_where=sa.text("state = 'pending'"))
    op.drop_index(op.f('ix_outbox_message_account_id'), table_name='outbox_message')
    op.drop_table('outbox_message')
    op.drop_index(op.f('ix_contact_point_address_hash'), table_name='contact_point')
    op.drop_table('contact_point')
