"""Domain errors: a stable machine code, a Chinese message for people, and a kind the edge maps to a status."""
from __future__ import annotations

# kind -> what it means; webhooks/errors.py maps kinds to HTTP statuses.
INVALID = "invalid"
NOT_FOUND = "not_found"
FORBIDDEN = "forbidden"
CONFLICT = "conflict"
UNAUTHENTICATED = "unauthenticated"

# The catalogue of domain error codes. It is part of the API: docs/errors.md is generated from it
# (`xinma docs errors`) and a test keeps the two in step.
CATALOGUE: dict[str, tuple[str, str]] = {
    # identifiers and subjects
    "bad_identifier": (INVALID, "证件号码格式不正确"),
    "bad_check_digit": (INVALID, "证件号码校验位错误"),
    "bad_subject_kind": (INVALID, "主体类型不正确"),
    "bad_name": (INVALID, "名称不能为空且不超过100个字符"),
    "subject_not_found": (NOT_FOUND, "未找到该信用主体"),
    "subject_exists": (CONFLICT, "该信用主体已存在"),
    # records
    "unknown_category": (INVALID, "未知的信用信息类别"),
    "category_exists": (CONFLICT, "该类别已存在"),
    "category_kind_mismatch": (INVALID, "类别与主体类型不符"),
    "bad_date": (INVALID, "日期格式不正确（应为 YYYY-MM-DD）"),
    "dates_out_of_order": (INVALID, "日期先后顺序不正确"),
    "record_not_found": (NOT_FOUND, "未找到该信用记录"),
    "not_a_bad_record": (CONFLICT, "只有失信记录可以修复或暂缓"),
    "already_repaired": (CONFLICT, "该记录已修复"),
    "bad_grade": (INVALID, "信用等级应为 A、B、C 或 D"),
    "bad_risk_level": (INVALID, "风险等级不正确"),
    # bulk import (reason codes of rejected rows; see docs/import.md)
    "unknown_subject": (INVALID, "未找到该信用主体，请先导入主体"),
    "duplicate_in_file": (INVALID, "文件中已有相同的记录，以首次出现的为准"),
    "missing_field": (INVALID, "缺少必填字段"),
    "field_too_long": (INVALID, "字段超过允许的长度"),
    "bad_row": (INVALID, "无法解析该行"),
    # organisations, accounts, sessions
    "organisation_not_found": (NOT_FOUND, "未找到该组织"),
    "account_not_found": (NOT_FOUND, "未找到该账号"),
    "login_taken": (CONFLICT, "该登录名已被使用"),
    "bad_credentials": (UNAUTHENTICATED, "登录名或密码错误"),
    "not_authenticated": (UNAUTHENTICATED, "请先登录"),
    "session_expired": (UNAUTHENTICATED, "登录已过期，请重新登录"),
    "account_not_active": (FORBIDDEN, "账号尚未通过审核或已停用"),
    "forbidden": (FORBIDDEN, "无权进行此操作"),
    "no_subject": (CONFLICT, "账号尚未绑定信用主体"),
    "subject_already_bound": (CONFLICT, "账号已绑定信用主体"),
    "bad_review_decision": (INVALID, "审核结论不正确"),
    "reason_required": (INVALID, "驳回或停用时必须填写原因"),
    "illegal_transition": (CONFLICT, "当前状态下不能进行此操作"),
    "declaration_not_found": (NOT_FOUND, "未找到该荣誉申报"),
    "demo_account_not_found": (NOT_FOUND, "没有这个演示账号"),
    # registration, onboarding and organisation members
    "bad_login": (INVALID, "登录名应为3至64位字母、数字或 _ . -"),
    "weak_password": (INVALID, "密码至少需要8个字符"),
    "identity_mismatch": (INVALID, "证件号码与姓名（名称）不符"),
    "identity_taken": (CONFLICT, "该证件已注册账号"),
    "bad_text": (INVALID, "填写内容不能为空或超出长度限制"),
    "bad_status": (INVALID, "状态不正确"),
    "bad_organisation_kind": (INVALID, "组织类型不正确"),
    "organisation_not_active": (CONFLICT, "组织尚未通过审核或已停用"),
    "bad_member_role": (INVALID, "成员角色应为办事员或组织管理员"),
    "member_not_active": (CONFLICT, "该账号尚未通过审核或已停用，不能加入组织"),
    "not_a_member": (NOT_FOUND, "该账号不是本组织成员"),
    "last_org_admin": (CONFLICT, "组织至少需要保留一名管理员"),
    # declarations, records and categories
    "not_an_honour_category": (INVALID, "请选择荣誉类别"),
    "date_in_future": (INVALID, "日期不能晚于今天"),
    "record_exists": (CONFLICT, "该来源下已有相同编号的记录"),
    "reserved_source": (INVALID, "该来源为系统保留，不能手工录入"),
    "already_suspended": (CONFLICT, "该记录正在暂缓中"),
    "not_suspended": (CONFLICT, "该记录未处于暂缓状态"),
    "bad_category_code": (INVALID, "类别代码应为2至48位小写字母、数字或下划线"),
    "bad_record_kind": (INVALID, "信用信息类型不正确"),
    "bad_applies_to": (INVALID, "适用范围不正确"),
    # codes, incentives and redemptions
    "bad_batch": (INVALID, "一次最多获取10分钟内的信用码"),
    "incentive_not_found": (NOT_FOUND, "未找到该激励措施"),
    "redemption_not_found": (NOT_FOUND, "未找到该核销记录"),
    "not_voidable": (CONFLICT, "该记录不是已核销状态，不能撤销"),
    "void_window_passed": (CONFLICT, "已超过可撤销时限（10分钟）"),
    "not_a_clerk": (FORBIDDEN, "仅核销员可以扫码核销"),
    "bad_idempotency_key": (INVALID, "幂等键应为1至64个字母、数字或 -_.:"),
    # incentive measures
    "bad_scenario": (INVALID, "激励场景不正确"),
    "bad_eligible_colours": (INVALID, "适用信用码颜色应为 green、blue、red 中的一个或多个"),
    "bad_eligible_kinds": (INVALID, "适用主体类型应为 person、enterprise、institution 中的一个或多个"),
    "min_grade_not_applicable": (INVALID, "最低信用等级只适用于企业或机构，设置后适用对象不能包含个人"),
    "bad_limit_count": (INVALID, "每个主体的使用次数应为不小于1的整数"),
    "bad_limit_period": (INVALID, "使用周期应为 day、week、month、year 或 ever"),
    "limit_incomplete": (INVALID, "使用次数与使用周期须同时填写或同时留空"),
    "bad_stock": (INVALID, "总名额应为不小于0的整数，留空表示不限"),
    "stock_below_used": (CONFLICT, "总名额不能少于已使用的名额"),
    "bad_venues": (INVALID, "地点最多50个，每个不能为空且不超过100个字符"),
    "bad_incentive_clerk": (INVALID, "核销员须为本组织的办事员或管理员"),
    # WeChat: mini-program login and clerk invites
    "wechat_login_failed": (UNAUTHENTICATED, "微信登录失败，请重新进入小程序"),
    "invite_not_found": (NOT_FOUND, "邀请二维码无效"),
    "invite_used": (CONFLICT, "该邀请二维码已被使用"),
    "invite_expired": (CONFLICT, "该邀请二维码已过期，请联系管理员重新生成"),
    # WeChat: binding an official-account follower to an existing account with a binding code
    "binding_code_invalid": (INVALID, "绑定码不正确。请核对后重新发送，或在信码中重新获取绑定码"),
    "binding_code_expired": (CONFLICT, "绑定码已过期（有效期10分钟），请在信码中重新获取"),
    "wechat_already_bound": (CONFLICT, "此微信已绑定另一个信码账号，不能再绑定"),
    # notices, contact points and the outbox (push)
    "notice_not_found": (NOT_FOUND, "未找到该消息"),
    "bad_contact_kind": (INVALID, "联系方式类型应为 email 或 mobile"),
    "bad_email": (INVALID, "电子邮箱格式不正确"),
    "bad_mobile": (INVALID, "手机号码格式不正确（应为11位中国大陆手机号）"),
    "consent_required": (INVALID, "请先阅读并同意接收通知的授权说明"),
    "contact_not_found": (NOT_FOUND, "未找到该联系方式"),
    "outbox_message_not_found": (NOT_FOUND, "未找到该推送消息"),
    "outbox_not_retryable": (CONFLICT, "只有投递失败（dead）的消息可以重试"),
    # legal service: service-address commitments, documents, one-time links (docs/legal-service.md)
    "no_service_addresses": (INVALID, "请至少填写一个电子送达地址（经办人微信、电子邮箱或手机号码）"),
    "too_many_service_addresses": (INVALID, "电子送达地址最多10个"),
    "duplicate_service_address": (INVALID, "电子送达地址有重复"),
    "not_an_agent": (INVALID, "微信送达地址须为本企业已通过审核的经办人账号"),
    "consent_mismatch": (INVALID, "承诺文本与当前版本不一致，请重新阅读并确认"),
    "consent_outdated": (INVALID, "承诺文本已更新，请阅读最新版本后确认"),
    "no_service_address": (CONFLICT, "该主体尚未承诺电子送达地址，不能电子送达"),
    "service_address_revoked": (CONFLICT, "该主体已撤回电子送达地址承诺，不能电子送达"),
    "not_an_issuer": (FORBIDDEN, "仅经审核的法院或行政机关人员可以送达法律文书"),
    "issuer_ambiguous": (INVALID, "您属于多个送达机关，请指定以哪个机关的名义送达"),
    "subject_required": (INVALID, "请填写受送达主体的编号或证件号码（二选一）"),
    "document_too_large": (INVALID, "文书文件超过大小上限"),
    "document_type_not_allowed": (INVALID, "文书只能是 PDF、PNG 或 JPEG 文件"),
    "document_not_found": (NOT_FOUND, "未找到该法律文书"),
    "not_the_recipient": (FORBIDDEN, "只有受送达人可以签收"),
    "document_content_unavailable": (CONFLICT, "文书文件暂时无法读取，请联系送达机关"),
    "link_not_found": (NOT_FOUND, "链接无效"),
    "link_used": (CONFLICT, "该链接已使用过，请在信码小程序中查看文书"),
    "link_expired": (CONFLICT, "该链接已过期，请在信码小程序中查看文书"),
    "link_session_expired": (CONFLICT, "查看时间已过，请在信码小程序中查看文书"),
    # policy offers (免申即享): enterprise profiles, policies, matching, offers, payment, the public notice
    "bad_industry_code": (INVALID, "行业代码不正确（应为 GB/T 4754 门类字母加2至4位数字，如 C3971）"),
    "bad_region_code": (INVALID, "行政区划代码不正确（应为6位数字，条件中也可为2位或4位前缀）"),
    "bad_tag": (INVALID, "标签不能为空，每个不超过32个字符，最多20个"),
    "bad_tax_amount": (INVALID, "纳税额应为以分为单位的非负整数"),
    "bad_tax_year": (INVALID, "纳税年度不正确"),
    "bad_amount_rule": (INVALID, "金额规则不正确：应为固定金额，或按上年度纳税额的比例计算并设上限"),
    "bad_conditions": (INVALID, "适用条件中有无法识别的项目"),
    "bad_policy_kinds": (INVALID, "适用主体类型应为 enterprise、institution 中的一个或多个"),
    "red_never_eligible": (INVALID, "红码主体不能享受政策资金"),
    "d_grade_never_eligible": (INVALID, "D级主体不能享受政策资金"),
    "bad_budget": (INVALID, "预算应为以分为单位的正整数"),
    "issuer_not_a_department": (INVALID, "政策须由政府部门或事业单位发布"),
    "policy_not_found": (NOT_FOUND, "未找到该政策"),
    "policy_locked": (CONFLICT, "政策发布后只能修改说明、公示期、确认期限和预算"),
    "budget_below_committed": (CONFLICT, "预算不能低于已承诺的金额"),
    "offer_not_found": (NOT_FOUND, "未找到该政策兑现事项"),
    "not_your_offer": (FORBIDDEN, "只有该企业的经办人可以办理此事项"),
    "offer_expired": (CONFLICT, "已超过确认期限，不能再确认"),
    "still_ineligible": (CONFLICT, "该企业仍为红码或D级，不能恢复办理"),
    "bad_offer_selection": (INVALID, "请列出要处理的事项编号（最多10000个），或选择全部"),
    "offers_not_ready": (CONFLICT, "部分事项不处于可办理的状态，本批次未执行"),
    "bad_payment_reference": (INVALID, "拨付凭证号应为1至64位字母、数字或 ._:/-"),
    "payment_reference_used": (CONFLICT, "该拨付凭证号已使用"),
    "not_in_notice_period": (CONFLICT, "不在公示期内"),
}


class DomainError(Exception):
    """Raised by operations; the edge turns it into an HTTP error or a chat reply."""

    def __init__(self, code: str, message: str | None = None, *, detail: dict | None = None):
        kind, default_message = CATALOGUE[code]
        super().__init__(code)
        self.code = code
        self.kind = kind
        self.message = message or default_message
        self.detail = detail or {}

    def __repr__(self) -> str:
        return f"DomainError({self.code!r})"
