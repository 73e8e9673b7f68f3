"""service-address commitments, documents, evidence log (legal service issue)

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22 08:00:00
"""
from alembic import op
import sqlalchemy as sa
import handlers.models


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

# Keeping (or not) a service-address commitment is part of the credit record (issue 6, docs/legal-service.md).
CATEGORIES = [
    ("legal_service_honoured", "依承诺及时接收法律文书", "honour", "organisation"),
    ("legal_service_evaded", "承诺送达地址后未接收法律文书", "bad", "organisation"),
]

# The evidence log is append-only in the database too: both engines refuse UPDATE and DELETE by trigger
# (PostgreSQL also TRUNCATE). An insider with DDL rights can drop them; the hash chain is what catches that.
_PG_FUNCTION = """
CREATE FUNCTION evidence_entry_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'evidence_entry is append-only (% refused)', TG_OP USING ERRCODE = 'insufficient_privilege';
END
$$
"""
_PG_TRIGGERS = [
    ("CREATE TRIGGER evidence_entry_append_only BEFORE UPDATE OR DELETE ON evidence_entry "
     "FOR EACH ROW EXECUTE FUNCTION evidence_entry_append_only()"),
    ("CREATE TRIGGER evidence_entry_no_truncate BEFORE TRUNCATE ON evidence_entry "
     "FOR EACH STATEMENT EXECUTE FUNCTION evidence_entry_append_only()"),
]
_SQLITE_TRIGGERS = [
    ("CREATE TRIGGER evidence_entry_no_update BEFORE UPDATE ON evidence_entry "
     "BEGIN SELECT RAISE(ABORT, 'evidence_entry is append-only (UPDATE refused)'); END"),
    ("CREATE TRIGGER evidence_entry_no_delete BEFORE DELETE ON evidence_entry "
     "BEGIN SELECT RAISE(ABORT, 'evidence_entry is append-only (DELETE refused)'); END"),
]


def upgrade() -> None:
    op.create_table('evidence_entry',
    sa.Column('seq', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('document_id', sa.Integer(), nullable=True),
    sa.Column('subject_id', sa.Integer(), nullable=True),
    sa.Column('event', sa.String(length=32), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=True),
    sa.Column('actor', sa.String(length=64), nullable=False),
    sa.Column('at', handlers.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('prev_hash', sa.String(length=64), nullable=False),
    sa.Column('document_prev_hash', sa.String(length=64), nullable=True),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('seq', name=op.f('pk_evidence_entry')),
    sa.UniqueConstraint('hash', name=op.f('uq_evidence_entry_hash'))
    )
    with op.batch_alter_table('evidence_entry', schema=None) as batch_op:
        batch_op.create_index('ix_evidence_entry_document_seq', ['document_id', 'seq'], unique=False)
        batch_op.create_index('ix_evidence_entry_subject_seq', ['subject_id', 'seq'], unique=False)

    op.create_table('service_commitment',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('subject_id', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('status', sa.Enum('active', 'superseded', 'revoked', name='commitment_status', native_enum=False, create_constraint=True, length=24), nullable=False),
    sa.Column('committed_by_id', sa.Integer(), nullable=False),
    sa.Column('consent_version', sa.String(length=16), nullable=False),
    sa.Column('consent_sha256', sa.String(length=64), nullable=False),
    sa.Column('consented_at', handlers.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('ended_at', handlers.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('ended_by_id', sa.Integer(), nullable=True),
    sa.Column('evidence_seq', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['committed_by_id'], ['account.id'], name=op.f('fk_service_commitment_committed_by_id_account')),
    sa.ForeignKeyConstraint(['ended_by_id'], ['account.id'], name=op.f('fk_service_commitment_ended_by_id_account')),
    sa.ForeignKeyConstraint(['subject_id'], ['subject.id'], name=op.f('fk_service_commitment_subject_id_subject'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_service_commitment')),
    sa.UniqueConstraint('subject_id', 'version', name='uq_service_commitment_subject_id_version')
    )
    with op.batch_alter_table('service_commitment', schema=None) as batch_op:
        batch_op.create_index('uq_service_commitment_active_subject', ['subject_id'], unique=True,
                              sqlite_where=sa.text("status = 'active'"), postgresql_where=sa.text("status = 'active'"))

    op.create_table('service_address',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('commitment_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('channel', sa.Enum('wechat', 'email', 'sms', name='service_channel', native_enum=False, create_constraint=True, length=24), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=True),
    sa.Column('address_sealed', sa.LargeBinary(), nullable=True),
    sa.Column('address_hash', sa.String(length=64), nullable=False),
    sa.Column('address_masked', sa.String(length=100), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], name=op.f('fk_service_address_account_id_account')),
    sa.ForeignKeyConstraint(['commitment_id'], ['service_commitment.id'], name=op.f('fk_service_address_commitment_id_service_commitment'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_service_address')),
    sa.UniqueConstraint('commitment_id', 'position', name='uq_service_address_commitment_id_position')
    )
    with op.batch_alter_table('service_address', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_service_address_commitment_id'), ['commitment_id'], unique=False)

    op.create_table('legal_document',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('subject_id', sa.Integer(), nullable=False),
    sa.Column('organisation_id', sa.Integer(), nullable=False),
    sa.Column('issued_by_id', sa.Integer(), nullable=False),
    sa.Column('commitment_id', sa.Integer(), nullable=False),
    sa.Column('case_number', sa.String(length=64), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('content_sha256', sa.String(length=64), nullable=False),
    sa.Column('content_type', sa.String(length=32), nullable=False),
    sa.Column('size_bytes', sa.Integer(), nullable=False),
    sa.Column('served_at', handlers.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('deadline_at', handlers.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('opened_at', handlers.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('acknowledged_at', handlers.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('acknowledged_by_id', sa.Integer(), nullable=True),
    sa.Column('status', sa.Enum('served', 'honoured', 'evaded', name='document_status', native_enum=False, create_constraint=True, length=24), nullable=False),
    sa.Column('credit_record_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['acknowledged_by_id'], ['account.id'], name=op.f('fk_legal_document_acknowledged_by_id_account')),
    sa.ForeignKeyConstraint(['commitment_id'], ['service_commitment.id'], name=op.f('fk_legal_document_commitment_id_service_commitment')),
    sa.ForeignKeyConstraint(['credit_record_id'], ['credit_record.id'], name=op.f('fk_legal_document_credit_record_id_credit_record')),
    sa.ForeignKeyConstraint(['issued_by_id'], ['account.id'], name=op.f('fk_legal_document_issued_by_id_account')),
    sa.ForeignKeyConstraint(['organisation_id'], ['organisation.id'], name=op.f('fk_legal_document_organisation_id_organisation')),
    sa.ForeignKeyConstraint(['subject_id'], ['subject.id'], name=op.f('fk_legal_document_subject_id_subject')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_legal_document'))
    )
    with op.batch_alter_table('legal_document', schema=None) as batch_op:
        batch_op.create_index('ix_legal_document_organisation_served', ['organisation_id', 'served_at'], unique=False)
        batch_op.create_index('ix_legal_document_status_deadline', ['status', 'deadline_at'], unique=False)
        batch_op.create_index('ix_legal_document_subject_served', ['subject_id', 'served_at'], unique=False)

    op.create_table('document_delivery',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('document_id', sa.Integer(), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('address_id', sa.Integer(), nullable=True),
    sa.Column('address_masked', sa.String(length=100), nullable=False),
    sa.Column('outbox_message_id', sa.Integer(), nullable=True),
    sa.Column('sent_at', handlers.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('delivered_at', handlers.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('failed_at', handlers.models.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['address_id'], ['service_address.id'], name=op.f('fk_document_delivery_address_id_service_address')),
    sa.ForeignKeyConstraint(['document_id'], ['legal_document.id'], name=op.f('fk_document_delivery_document_id_legal_document'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_document_delivery')),
    sa.UniqueConstraint('outbox_message_id', name=op.f('uq_document_delivery_outbox_message_id'))
    )
    with op.batch_alter_table('document_delivery', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_document_delivery_document_id'), ['document_id'], unique=False)

    op.create_table('document_link',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('document_id', sa.Integer(), nullable=False),
    sa.Column('address_id', sa.Integer(), nullable=True),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', handlers.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', handlers.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('used_at', handlers.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('session_hash', sa.String(length=64), nullable=True),
    sa.Column('session_expires_at', handlers.models.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['address_id'], ['service_address.id'], name=op.f('fk_document_link_address_id_service_address')),
    sa.ForeignKeyConstraint(['document_id'], ['legal_document.id'], name=op.f('fk_document_link_document_id_legal_document'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_document_link')),
    sa.UniqueConstraint('session_hash', name=op.f('uq_document_link_session_hash')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_document_link_token_hash'))
    )
    with op.batch_alter_table('document_link', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_document_link_document_id'), ['document_id'], unique=False)

    category = sa.table("category", sa.column("code"), sa.column("name"), sa.column("kind"),
                        sa.column("applies_to"))
    # A downgrade keeps categories that records still use; upgrading again must not insert them twice.
    have = set(op.get_bind().execute(sa.select(category.c.code)).scalars())
    op.bulk_insert(category, [{"code": c, "name": n, "kind": k, "applies_to": a}
                              for c, n, k, a in CATEGORIES if c not in have])

    if op.get_bind().dialect.name == "postgresql":
        op.execute(_PG_FUNCTION)
        for statement in _PG_TRIGGERS:
            op.execute(statement)
    else:
        for statement in _SQLITE_TRIGGERS:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS evidence_entry_no_truncate ON evidence_entry")
        op.execute("DROP TRIGGER IF EXISTS evidence_entry_append_only ON evidence_entry")
        op.execute("DROP FUNCTION IF EXISTS evidence_entry_append_only()")
    else:
        op.execute("DROP TRIGGER IF EXISTS evidence_entry_no_delete")
        op.execute("DROP TRIGGER IF EXISTS evidence_entry_no_update")

    # Records made from documents keep their category; drop the categories only when nothing uses them.
    codes = ", ".join(f"'{c}'" for c, *_ in CATEGORIES)
    op.execute(f"DELETE FROM category WHERE code IN ({codes}) "
               f"AND code NOT IN (SELECT category_code FROM credit_record) "
               f"AND code NOT IN (SELECT category_code FROM honour_declaration)")

    with op.batch_alter_table('document_link', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_document_link_document_id'))
    op.drop_table('document_link')
    with op.batch_alter_table('document_delivery', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_document_delivery_document_id'))
    op.drop_table('document_delivery')
    with op.batch_alter_table('legal_document', schema=None) as batch_op:
        batch_op.drop_index('ix_legal_document_subject_served')
        batch_op.drop_index('ix_legal_document_status_deadline')
        batch_op.drop_index('ix_legal_document_organisation_served')
    op.drop_table('legal_document')
    with op.batch_alter_table('service_address', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_service_address_commitment_id'))
    op.drop_table('service_address')
    with op.batch_alter_table('service_commitment', schema=None) as batch_op:
        batch_op.drop_index('uq_service_commitment_active_subject')
    op.drop_table('service_commitment')
    with op.batch_alter_table('evidence_entry', schema=None) as batch_op:
        batch_op.drop_index('ix_evidence_entry_subject_seq')
        batch_op.drop_index('ix_evidence_entry_document_seq')
    op.drop_table('evidence_entry')
