"""policies, offers, objections (policy offers issue)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22 08:00:00
"""
from alembic import op
import sqlalchemy as sa
import handlers.models


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

# offer has no foreign keys (see handlers/models/policies.py: a million RI checks per matching); deleting a subject
# or a policy deletes its offers by trigger instead.
_PG_CASCADES = [
    """CREATE FUNCTION offer_cascade_subject() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN DELETE FROM offer WHERE subject_id = OLD.id; RETURN OLD; END $$""",
    """CREATE FUNCTION offer_cascade_policy() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN DELETE FROM offer WHERE policy_id = OLD.id; RETURN OLD; END $$""",
    "CREATE TRIGGER offer_cascade_subject BEFORE DELETE ON subject FOR EACH ROW EXECUTE FUNCTION offer_cascade_subject()",
    "CREATE TRIGGER offer_cascade_policy BEFORE DELETE ON policy FOR EACH ROW EXECUTE FUNCTION offer_cascade_policy()",
]
_SQLITE_CASCADES = [
    "CREATE TRIGGER offer_cascade_subject BEFORE DELETE ON subject BEGIN DELETE FROM offer WHERE subject_id = OLD.id; END",
    "CREATE TRIGGER offer_cascade_policy BEFORE DELETE ON policy BEGIN DELETE FROM offer WHERE policy_id = OLD.id; END",
]

_OFFER_STATES = ('matched', 'notified', 'confirmed', 'declined', 'approved', 'disbursed', 'received', 'held',
                 'expired', 'cancelled')


def _enum(name, *values):
    return sa.Enum(*values, name=name, native_enum=False, create_constraint=True, length=24)


def upgrade() -> None:
    op.create_table('enterprise_profile',
    sa.Column('subject_id', sa.Integer(), nullable=False),
    sa.Column('industry_code', sa.String(length=5), nullable=True),
    sa.Column('region_code', sa.String(length=6), nullable=True),
    sa.Column('registered_on', sa.Date(), nullable=True),
    sa.Column('last_year_tax_fen', sa.BigInteger(), nullable=True),
    sa.Column('tax_year', sa.Integer(), nullable=True),
    sa.Column('updated_at', handlers.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['subject_id'], ['subject.id'], name=op.f('fk_enterprise_profile_subject_id_subject'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('subject_id', name=op.f('pk_enterprise_profile'))
    )
    op.create_table('enterprise_tag',
    sa.Column('subject_id', sa.Integer(), nullable=False),
    sa.Column('tag', sa.String(length=32), nullable=False),
    sa.ForeignKeyConstraint(['subject_id'], ['subject.id'], name=op.f('fk_enterprise_tag_subject_id_subject'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('subject_id', 'tag', name=op.f('pk_enterprise_tag'))
    )
    with op.batch_alter_table('enterprise_tag', schema=None) as batch_op:
        batch_op.create_index('ix_enterprise_tag_tag', ['tag'], unique=False)

    op.create_table('policy',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('organisation_id', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=100), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('state', _enum('policy_state', 'draft', 'published', 'closed'), nullable=False),
    sa.Column('amount_rule', sa.JSON(), nullable=False),
    sa.Column('conditions', sa.JSON(), nullable=False),
    sa.Column('budget_fen', sa.BigInteger(), nullable=True),
    sa.Column('notice_from', sa.Date(), nullable=False),
    sa.Column('notice_until', sa.Date(), nullable=False),
    sa.Column('confirm_until', sa.Date(), nullable=True),
    sa.Column('match_runs', sa.Integer(), nullable=False),
    sa.Column('matched_at', handlers.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', handlers.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', handlers.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('published_at', handlers.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('closed_at', handlers.models.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['created_by_id'], ['account.id'], name=op.f('fk_policy_created_by_id_account')),
    sa.ForeignKeyConstraint(['organisation_id'], ['organisation.id'], name=op.f('fk_policy_organisation_id_organisation')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_policy'))
    )
    with op.batch_alter_table('policy', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_policy_organisation_id'), ['organisation_id'], unique=False)

    op.create_table('disbursement',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('policy_id', sa.Integer(), nullable=False),
    sa.Column('payment_reference', sa.String(length=64), nullable=False),
    sa.Column('offer_count', sa.Integer(), nullable=False),
    sa.Column('total_fen', sa.BigInteger(), nullable=False),
    sa.Column('held_count', sa.Integer(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', handlers.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['created_by_id'], ['account.id'], name=op.f('fk_disbursement_created_by_id_account')),
    sa.ForeignKeyConstraint(['policy_id'], ['policy.id'], name=op.f('fk_disbursement_policy_id_policy'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_disbursement')),
    sa.UniqueConstraint('payment_reference', name=op.f('uq_disbursement_payment_reference'))
    )
    with op.batch_alter_table('disbursement', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_disbursement_policy_id'), ['policy_id'], unique=False)

    op.create_table('offer',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('policy_id', sa.Integer(), nullable=False),
    sa.Column('subject_id', sa.Integer(), nullable=False),
    sa.Column('state', _enum('offer_state', *_OFFER_STATES), nullable=False),
    sa.Column('amount_fen', sa.BigInteger(), nullable=False),
    sa.Column('grade', sa.String(length=1), nullable=True),
    sa.Column('match_run', sa.Integer(), nullable=False),
    sa.Column('reason', sa.String(length=32), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('held_from', _enum('offer_held_from', *_OFFER_STATES), nullable=True),
    sa.Column('matched_at', handlers.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('notified_at', handlers.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('confirmed_at', handlers.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('confirmed_by_id', sa.Integer(), nullable=True),
    sa.Column('declined_at', handlers.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('approved_at', handlers.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('approved_by_id', sa.Integer(), nullable=True),
    sa.Column('disbursement_id', sa.Integer(), nullable=True),
    sa.Column('disbursed_at', handlers.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('received_at', handlers.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('received_by_id', sa.Integer(), nullable=True),
    sa.Column('held_at', handlers.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('updated_at', handlers.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_by_id', sa.Integer(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_offer')),
    sa.UniqueConstraint('policy_id', 'subject_id', name='uq_offer_policy_id_subject_id')
    )
    with op.batch_alter_table('offer', schema=None) as batch_op:
        batch_op.create_index('ix_offer_policy_state', ['policy_id', 'state'], unique=False)
        batch_op.create_index('ix_offer_subject_id', ['subject_id'], unique=False)

    op.create_table('objection',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('policy_id', sa.Integer(), nullable=False),
    sa.Column('offer_id', sa.Integer(), nullable=True),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('created_at', handlers.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], name=op.f('fk_objection_account_id_account')),
    sa.ForeignKeyConstraint(['offer_id'], ['offer.id'], name=op.f('fk_objection_offer_id_offer'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['policy_id'], ['policy.id'], name=op.f('fk_objection_policy_id_policy'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_objection'))
    )
    with op.batch_alter_table('objection', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_objection_policy_id'), ['policy_id'], unique=False)

    for statement in _PG_CASCADES if op.get_bind().dialect.name == 'postgresql' else _SQLITE_CASCADES:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute("DROP TRIGGER IF EXISTS offer_cascade_policy ON policy")
        op.execute("DROP TRIGGER IF EXISTS offer_cascade_subject ON subject")
        op.execute("DROP FUNCTION IF EXISTS offer_cascade_policy()")
        op.execute("DROP FUNCTION IF EXISTS offer_cascade_subject()")
    else:
        op.execute("DROP TRIGGER IF EXISTS offer_cascade_policy")
        op.execute("DROP TRIGGER IF EXISTS offer_cascade_subject")
    with op.batch_alter_table('objection', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_objection_policy_id'))
    op.drop_table('objection')
    with op.batch_alter_table('offer', schema=None) as batch_op:
        batch_op.drop_index('ix_offer_subject_id')
        batch_op.drop_index('ix_offer_policy_state')
    op.drop_table('offer')
    with op.batch_alter_table('disbursement', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_disbursement_policy_id'))
    op.drop_table('disbursement')
    with op.batch_alter_table('policy', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_policy_organisation_id'))
    op.drop_table('policy')
    with op.batch_alter_table('enterprise_tag', schema=None) as batch_op:
        batch_op.drop_index('ix_enterprise_tag_tag')
    op.drop_table('enterprise_tag')
    op.drop_table('enterprise_profile')
