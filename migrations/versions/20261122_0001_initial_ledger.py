"""initial ledger

Revision ID: 0001
Revises:
Create Date: 2026-11-22 01:57:36.229688
"""
from alembic import op
import sqlalchemy as sa
import handlers.models


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None

# The categories every installation starts with (domain.md); more can be added by platform admins.
CATEGORIES = [
    ("star_volunteer", "星级志愿者", "honour", "person"),
    ("model_worker", "劳动模范", "honour", "person"),
    ("moral_model", "道德模范", "honour", "person"),
    ("charity_figure", "慈善人物", "honour", "person"),
    ("huizhou_good_person", "惠州好人", "honour", "person"),
    ("best_civil_servant", "最美公务员", "honour", "person"),
    ("best_nurse", "最美护士", "honour", "person"),
    ("excellent_teacher", "优秀教师", "honour", "person"),
    ("honest_entrepreneur", "诚信企业家", "honour", "person"),
    ("a_grade_taxpayer", "A级纳税人", "honour", "organisation"),
    ("customs_advanced_certified", "海关高级认证企业", "honour", "organisation"),
    ("honest_enterprise", "诚信企业", "honour", "organisation"),
    ("administrative_penalty", "行政处罚", "bad", "any"),
    ("dishonest_judgment_debtor", "失信被执行人", "bad", "any"),
    ("consumption_restriction", "限制高消费", "bad", "any"),
    ("serious_dishonesty", "严重失信主体名单", "bad", "any"),
    ("utility_arrears", "公用事业欠费", "bad", "any"),
]


def upgrade() -> None:
    op.create_table('category',
    sa.Column('code', sa.String(length=48), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.Enum('honour', 'bad', name='record_kind', native_enum=False, create_constraint=True, length=24), nullable=False),
    sa.Column('applies_to', sa.Enum('person', 'organisation', 'any', name='applies_to', native_enum=False, create_constraint=True, length=24), nullable=False),
    sa.PrimaryKeyConstraint('code', name=op.f('pk_category'))
    )
    op.create_table('subject',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.Enum('person', 'enterprise', 'institution', name='subject_kind', native_enum=False, create_constraint=True, length=24), nullable=False),
    sa.Column('id_hash', sa.String(length=64), nullable=False),
    sa.Column('id_masked', sa.String(length=18), nullable=False),
    sa.Column('name_encrypted', sa.LargeBinary(), nullable=False),
    sa.Column('name_masked', sa.String(length=64), nullable=False),
    sa.Column('grade', sa.Enum('A', 'B', 'C', 'D', name='grade', native_enum=False, create_constraint=True, length=24), nullable=True),
    sa.Column('grade_evaluated_on', sa.Date(), nullable=True),
    sa.Column('risk_level', sa.Enum('high', 'elevated', 'moderate', 'low', name='risk_level', native_enum=False, create_constraint=True, length=24), nullable=True),
    sa.Column('colour', sa.Enum('green', 'blue', 'red', name='colour', native_enum=False, create_constraint=True, length=24), nullable=True),
    sa.Column('colour_valid_from', handlers.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('colour_valid_until', handlers.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', handlers.models.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_subject')),
    sa.UniqueConstraint('id_hash', name=op.f('uq_subject_id_hash'))
    )
    op.create_table('account',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('login', sa.String(length=64), nullable=False),
    sa.Column('password_hash', sa.String(length=256), nullable=True),
    sa.Column('subject_id', sa.Integer(), nullable=True),
    sa.Column('status', sa.Enum('pending', 'approved', 'rejected', 'suspended', name='status', native_enum=False, create_constraint=True, length=24), nullable=False),
    sa.Column('status_reason', sa.Text(), nullable=True),
    sa.Column('is_demo', sa.Boolean(), nullable=False),
    sa.Column('created_at', handlers.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('reviewed_at', handlers.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('reviewed_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['reviewed_by_id'], ['account.id'], name=op.f('fk_account_reviewed_by_id_account')),
    sa.ForeignKeyConstraint(['subject_id'], ['subject.id'], name=op.f('fk_account_subject_id_subject')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_account')),
    sa.UniqueConstraint('login', name=op.f('uq_account_login'))
    )
    with op.batch_alter_table('account', schema=None) as batch_op:
        batch_op.create_index('ix_account_status', ['status'], unique=False)
        batch_op.create_index(batch_op.f('ix_account_subject_id'), ['subject_id'], unique=False)

    op.create_table('credit_record',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('subject_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.Enum('honour', 'bad', name='record_kind', native_enum=False, create_constraint=True, length=24), nullable=False),
    sa.Column('category_code', sa.String(length=48), nullable=False),
    sa.Column('source', sa.String(length=64), nullable=False),
    sa.Column('external_id', sa.String(length=128), nullable=False),
    sa.Column('effective_on', sa.Date(), nullable=False),
    sa.Column('published_until', sa.Date(), nullable=True),
    sa.Column('repaired_on', sa.Date(), nullable=True),
    sa.Column('repair_reason', sa.Text(), nullable=True),
    sa.Column('suspended_on', sa.Date(), nullable=True),
    sa.Column('suspended_until', sa.Date(), nullable=True),
    sa.Column('suspension_reason', sa.Text(), nullable=True),
    sa.Column('created_at', handlers.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', handlers.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['category_code'], ['category.code'], name=op.f('fk_credit_record_category_code_category')),
    sa.ForeignKeyConstraint(['subject_id'], ['subject.id'], name=op.f('fk_credit_record_subject_id_subject'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_credit_record')),
    sa.UniqueConstraint('source', 'external_id', name='uq_credit_record_source_external_id')
    )
    with op.batch_alter_table('credit_record', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_credit_record_subject_id'), ['subject_id'], unique=False)

    op.create_table('organisation',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('kind', sa.Enum('department', 'institution', 'enterprise', 'merchant', name='organisation_kind', native_enum=False, create_constraint=True, length=24), nullable=False),
    sa.Column('status', sa.Enum('pending', 'approved', 'rejected', 'suspended', name='status', native_enum=False, create_constraint=True, length=24), nullable=False),
    sa.Column('status_reason', sa.Text(), nullable=True),
    sa.Column('contact', sa.String(length=200), nullable=True),
    sa.Column('subject_id', sa.Integer(), nullable=True),
    sa.Column('created_at', handlers.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('reviewed_at', handlers.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('reviewed_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['reviewed_by_id'], ['account.id'], name=op.f('fk_organisation_reviewed_by_id_account')),
    sa.ForeignKeyConstraint(['subject_id'], ['subject.id'], name=op.f('fk_organisation_subject_id_subject')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_organisation'))
    )
    with op.batch_alter_table('organisation', schema=None) as batch_op:
        batch_op.create_index('ix_organisation_status', ['status'], unique=False)

    op.create_table('api_token',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', handlers.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', handlers.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], name=op.f('fk_api_token_account_id_account'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_token')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_api_token_token_hash'))
    )
    with op.batch_alter_table('api_token', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_api_token_account_id'), ['account_id'], unique=False)

    op.create_table('honour_declaration',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('subject_id', sa.Integer(), nullable=False),
    sa.Column('declared_by_id', sa.Integer(), nullable=False),
    sa.Column('category_code', sa.String(length=48), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('issued_by', sa.String(length=100), nullable=False),
    sa.Column('awarded_on', sa.Date(), nullable=False),
    sa.Column('valid_until', sa.Date(), nullable=True),
    sa.Column('evidence', sa.Text(), nullable=False),
    sa.Column('status', sa.Enum('pending', 'approved', 'rejected', name='declaration_status', native_enum=False, create_constraint=True, length=24), nullable=False),
    sa.Column('review_reason', sa.Text(), nullable=True),
    sa.Column('reviewed_by_id', sa.Integer(), nullable=True),
    sa.Column('reviewed_at', handlers.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('record_id', sa.Integer(), nullable=True),
    sa.Column('created_at', handlers.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['category_code'], ['category.code'], name=op.f('fk_honour_declaration_category_code_category')),
    sa.ForeignKeyConstraint(['declared_by_id'], ['account.id'], name=op.f('fk_honour_declaration_declared_by_id_account')),
    sa.ForeignKeyConstraint(['record_id'], ['credit_record.id'], name=op.f('fk_honour_declaration_record_id_credit_record')),
    sa.ForeignKeyConstraint(['reviewed_by_id'], ['account.id'], name=op.f('fk_honour_declaration_reviewed_by_id_account')),
    sa.ForeignKeyConstraint(['subject_id'], ['subject.id'], name=op.f('fk_honour_declaration_subject_id_subject')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_honour_declaration'))
    )
    with op.batch_alter_table('honour_declaration', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_honour_declaration_status'), ['status'], unique=False)
        batch_op.create_index(batch_op.f('ix_honour_declaration_subject_id'), ['subject_id'], unique=False)

    op.create_table('role_grant',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('role', sa.Enum('citizen', 'enterprise_agent', 'clerk', 'org_admin', 'platform_admin', name='role', native_enum=False, create_constraint=True, length=24), nullable=False),
    sa.Column('organisation_id', sa.Integer(), nullable=True),
    sa.Column('subject_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], name=op.f('fk_role_grant_account_id_account'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['organisation_id'], ['organisation.id'], name=op.f('fk_role_grant_organisation_id_organisation')),
    sa.ForeignKeyConstraint(['subject_id'], ['subject.id'], name=op.f('fk_role_grant_subject_id_subject')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_role_grant')),
    sa.UniqueConstraint('account_id', 'role', 'organisation_id', 'subject_id', name='uq_role_grant_account_role_scope')
    )
    with op.batch_alter_table('role_grant', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_role_grant_account_id'), ['account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_role_grant_organisation_id'), ['organisation_id'], unique=False)


    category = sa.table("category", sa.column("code"), sa.column("name"), sa.column("kind"),
                        sa.column("applies_to"))
    op.bulk_insert(category, [{"code": c, "name": n, "kind": k, "applies_to": a} for c, n, k, a in CATEGORIES])


def downgrade() -> None:
    with op.batch_alter_table('role_grant', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_role_grant_organisation_id'))
        batch_op.drop_index(batch_op.f('ix_role_grant_account_id'))

    op.drop_table('role_grant')
    with op.batch_alter_table('honour_declaration', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_honour_declaration_subject_id'))
        batch_op.drop_index(batch_op.f('ix_honour_declaration_status'))

    op.drop_table('honour_declaration')
    with op.batch_alter_table('api_token', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_api_token_account_id'))

    op.drop_table('api_token')
    with op.batch_alter_table('organisation', schema=None) as batch_op:
        batch_op.drop_index('ix_organisation_status')

    op.drop_table('organisation')
    with op.batch_alter_table('credit_record', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_credit_record_subject_id'))

    op.drop_table('credit_record')
    with op.batch_alter_table('account', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_account_subject_id'))
        batch_op.drop_index('ix_account_status')

    op.drop_table('account')
    op.drop_table('subject')
    op.drop_table('category')
