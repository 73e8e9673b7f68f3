"""codes incentives redemptions

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 02:16:04.581908
"""
from alembic import op
import sqlalchemy as sa
import handlers.models


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('signing_key',
    sa.Column('kid', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('public_key', sa.LargeBinary(length=32), nullable=False),
    sa.Column('private_key_sealed', sa.LargeBinary(), nullable=False),
    sa.Column('created_at', handlers.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('retired_at', handlers.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('verify_until', handlers.models.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('kid', name=op.f('pk_signing_key'))
    )
    op.create_table('code_handle',
    sa.Column('handle', sa.LargeBinary(length=8), nullable=False),
    sa.Column('subject_id', sa.Integer(), nullable=False),
    sa.Column('created_at', handlers.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', handlers.models.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['subject_id'], ['subject.id'], name=op.f('fk_code_handle_subject_id_subject'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('handle', name=op.f('pk_code_handle'))
    )
    with op.batch_alter_table('code_handle', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_code_handle_subject_id'), ['subject_id'], unique=False)
        batch_op.create_index('uq_code_handle_live_subject', ['subject_id'], unique=True, sqlite_where=sa.text('revoked_at IS NULL'), postgresql_where=sa.text('revoked_at IS NULL'))

    op.create_table('notice',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('subject_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('body', sa.JSON(), nullable=False),
    sa.Column('created_at', handlers.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('read_at', handlers.models.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['subject_id'], ['subject.id'], name=op.f('fk_notice_subject_id_subject'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notice'))
    )
    with op.batch_alter_table('notice', schema=None) as batch_op:
        batch_op.create_index('ix_notice_subject_created', ['subject_id', 'created_at'], unique=False)

    op.create_table('incentive',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('organisation_id', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=100), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('scenario', sa.Enum('administrative_approval', 'transport', 'tourism', 'library', 'finance', 'medical', 'housing', 'other', name='scenario', native_enum=False, create_constraint=True, length=24), nullable=False),
    sa.Column('eligible_colours', sa.JSON(), nullable=False),
    sa.Column('eligible_kinds', sa.JSON(), nullable=False),
    sa.Column('min_grade', sa.Enum('A', 'B', 'C', 'D', name='grade', native_enum=False, create_constraint=True, length=24), nullable=True),
    sa.Column('limit_count', sa.Integer(), nullable=True),
    sa.Column('limit_period', sa.Enum('day', 'week', 'month', 'year', 'ever', name='period', native_enum=False, create_constraint=True, length=24), nullable=True),
    sa.Column('stock_total', sa.Integer(), nullable=True),
    sa.Column('stock_used', sa.Integer(), server_default='0', nullable=False),
    sa.Column('valid_from', sa.Date(), nullable=True),
    sa.Column('valid_until', sa.Date(), nullable=True),
    sa.Column('venues', sa.JSON(), nullable=False),
    sa.Column('status', sa.Enum('open', 'closed', name='incentive_status', native_enum=False, create_constraint=True, length=24), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', handlers.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', handlers.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['created_by_id'], ['account.id'], name=op.f('fk_incentive_created_by_id_account')),
    sa.ForeignKeyConstraint(['organisation_id'], ['organisation.id'], name=op.f('fk_incentive_organisation_id_organisation')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_incentive'))
    )
    with op.batch_alter_table('incentive', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_incentive_organisation_id'), ['organisation_id'], unique=False)

    op.create_table('incentive_clerk',
    sa.Column('incentive_id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], name=op.f('fk_incentive_clerk_account_id_account'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['incentive_id'], ['incentive.id'], name=op.f('fk_incentive_clerk_incentive_id_incentive'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('incentive_id', 'account_id', name=op.f('pk_incentive_clerk'))
    )
    op.create_table('quota_usage',
    sa.Column('incentive_id', sa.Integer(), nullable=False),
    sa.Column('subject_id', sa.Integer(), nullable=False),
    sa.Column('period_key', sa.String(length=16), nullable=False),
    sa.Column('used', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['incentive_id'], ['incentive.id'], name=op.f('fk_quota_usage_incentive_id_incentive'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['subject_id'], ['subject.id'], name=op.f('fk_quota_usage_subject_id_subject'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('incentive_id', 'subject_id', 'period_key', name=op.f('pk_quota_usage'))
    )
    op.create_table('redemption',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('incentive_id', sa.Integer(), nullable=False),
    sa.Column('organisation_id', sa.Integer(), nullable=False),
    sa.Column('subject_id', sa.Integer(), nullable=True),
    sa.Column('clerk_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.Enum('redeemed', 'rejected', 'voided', name='redemption_status', native_enum=False, create_constraint=True, length=24), nullable=False),
    sa.Column('reason', sa.String(length=32), nullable=True),
    sa.Column('colour', sa.Enum('green', 'blue', 'red', name='colour', native_enum=False, create_constraint=True, length=24), nullable=True),
    sa.Column('token_kid', sa.Integer(), nullable=True),
    sa.Column('token_nonce', sa.String(length=12), nullable=True),
    sa.Column('venue', sa.String(length=100), nullable=True),
    sa.Column('idempotency_key', sa.String(length=64), nullable=False),
    sa.Column('period_key', sa.String(length=16), nullable=True),
    sa.Column('created_at', handlers.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('voided_at', handlers.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('voided_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['clerk_id'], ['account.id'], name=op.f('fk_redemption_clerk_id_account')),
    sa.ForeignKeyConstraint(['incentive_id'], ['incentive.id'], name=op.f('fk_redemption_incentive_id_incentive')),
    sa.ForeignKeyConstraint(['organisation_id'], ['organisation.id'], name=op.f('fk_redemption_organisation_id_organisation')),
    sa.ForeignKeyConstraint(['subject_id'], ['subject.id'], name=op.f('fk_redemption_subject_id_subject')),
    sa.ForeignKeyConstraint(['voided_by_id'], ['account.id'], name=op.f('fk_redemption_voided_by_id_account')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_redemption')),
    sa.UniqueConstraint('clerk_id', 'idempotency_key', name='uq_redemption_clerk_id_idempotency_key')
    )
    with op.batch_alter_table('redemption', schema=None) as batch_op:
        batch_op.create_index('ix_redemption_organisation_created', ['organisation_id', 'created_at'], unique=False)
        batch_op.create_index('ix_redemption_subject_created', ['subject_id', 'created_at'], unique=False)
        batch_op.create_index('uq_redemption_token_once', ['incentive_id', 'token_nonce'], unique=True, sqlite_where=sa.text("status = 'redeemed'"), postgresql_where=sa.text("status = 'redeemed'"))



def downgrade() -> None:
    with op.batch_alter_table('redemption', schema=None) as batch_op:
        batch_op.drop_index('uq_redemption_token_once', sqlite_where=sa.text("status = 'redeemed'"), postgresql_where=sa.text("status = 'redeemed'"))
        batch_op.drop_index('ix_redemption_subject_created')
        batch_op.drop_index('ix_redemption_organisation_created')

    op.drop_table('redemption')
    op.drop_table('quota_usage')
    op.drop_table('incentive_clerk')
    with op.batch_alter_table('incentive', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_incentive_organisation_id'))

    op.drop_table('incentive')
    with op.batch_alter_table('notice', schema=None) as batch_op:
        batch_op.drop_index('ix_notice_subject_created')

    op.drop_table('notice')
    with op.batch_alter_table('code_handle', schema=None) as batch_op:
        batch_op.drop_index('uq_code_handle_live_subject', sqlite_where=sa.text('revoked_at IS NULL'), postgresql_where=sa.text('revoked_at IS NULL'))
        batch_op.drop_index(batch_op.f('ix_code_handle_subject_id'))

    op.drop_table('code_handle')
    op.drop_table('signing_key')
