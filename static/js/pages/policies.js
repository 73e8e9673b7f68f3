// 政策兑现 desk (免申即享) for the issuing department's admins and platform admins: write a policy, preview whom it
// matches, publish it (the matched enterprises get their push), follow the counts, approve the confirmed offers,
// pay the approved ones in a batch with the payment's reference, release or cancel one offer.

import { api } from '../api.js';
import {
  clear, dialog, errorBox, fenText, field, fmtDateTime, formValues, h, KIND_WORDS, OFFER_STATE_WORDS, offerPill,
  POLICY_STATE_WORDS, toast, today, yuanText,
} from '../ui.js';

const ISSUER_KINDS = ['department', 'institution'];  // handlers/policies.py ISSUERS
const BASE_WORDS = { last_year_tax: '上年度纳税额' };
const STATE_ORDER = ['notified', 'confirmed', 'approved', 'held', 'disbursed', 'received', 'declined', 'expired', 'cancelled'];

/** Organisations whose policies I may write: any department or institution for a platform admin (asked of the
 * API when the form opens), else those I administer. */
function administered(who) {
  const mine = new Set((who.me.roles || []).filter((r) => r.role === 'org_admin').map((r) => r.organisation_id));
  return (who.orgs || []).filter((o) => mine.has(o.id) && ISSUER_KINDS.includes(o.kind));
}

function isPlatformAdmin(me) {
  return (me.roles || []).some((r) => r.role === 'platform_admin');
}

function policyPill(state) {
  const tone = { draft: 'grey', published: 'green', closed: 'grey' }[state] || 'grey';
  return h('span', { class: `pill pill-${tone}`, dataset: { state } }, POLICY_STATE_WORDS[state] || state);
}

export function amountWords(rule) {
  if (!rule) return '';
  if (rule.fixed_fen !== undefined && rule.fixed_fen !== null) return `每户 ${fenText(rule.fixed_fen)}`;
  return `${BASE_WORDS[rule.base] || rule.base}的 ${rule.rate_bp / 100}%，单户最高 ${fenText(rule.cap_fen)}`;
}

export function conditionWords(c) {
  const out = [];
  if (!c) return ['所有企业'];
  if (c.kinds && c.kinds.length) out.push(`主体：${c.kinds.map((k) => KIND_WORDS[k] || k).join('、')}`);
  if (c.min_grade) out.push(`公共信用等级 ${c.min_grade} 级及以上`);
  if (c.colours && c.colours.length) out.push(`码色：${c.colours.map((k) => ({ green: '绿码', blue: '蓝码' }[k] || k)).join('、')}`);
  if (c.industry_prefixes && c.industry_prefixes.length) out.push(`行业（GB/T 4754）：${c.industry_prefixes.join('、')}`);
  if (c.region_prefixes && c.region_prefixes.length) out.push(`地区代码：${c.region_prefixes.join('、')}`);
  if (c.registered_before) out.push(`成立于 ${c.registered_before} 之前`);
  if (c.tags_all && c.tags_all.length) out.push(`须具备：${c.tags_all.join('、')}`);
  if (c.tags_any && c.tags_any.length) out.push(`具备其一：${c.tags_any.join('、')}`);
  out.push('红码或 D 级企业不予兑现');
  return out;
}

function matchSummary(m, published) {
  return h('p', { class: 'info', id: 'match-result', role: 'status' },
    `${published ? '已匹配并推送' : '预览（未推送）'}：新符合条件 ${m.eligible} 户，`
    + `${published ? '推送' : '可兑现'} ${m.offered} 户，共 ${fenText(m.offered_fen)}`
    + (m.over_budget ? `；预算不足未覆盖 ${m.over_budget} 户` : '')
    + (m.remaining_fen !== null && m.remaining_fen !== undefined ? `；预算剩余 ${fenText(m.remaining_fen)}` : '')
    + (published ? `；已写入通知 ${m.notified} 条` : ''));
}

// --- the list ----------------------------------------------------------------------------------------

function fen(yuan) {
  if (yuan === null || yuan === undefined || yuan === '') return null;
  return Math.round(Number(yuan) * 100);
}

function words(text) {
  return (text || '').split(/[,，、;；\s]+/).map((s) => s.trim()).filter(Boolean);
}

async function createForm(ctx, onCreated) {
  let orgs = administered(ctx);
  if (isPlatformAdmin(ctx.me)) {
    const page = await api('GET', '/admin/organisations', { query: { status: 'approved', limit: 200 } });
    orgs = page.items.filter((o) => ISSUER_KINDS.includes(o.kind));
  }
  const problem = h('div');
  const day = today();
  const form = h('form', {
    class: 'card', id: 'policy-form',
    onsubmit: async (e) => {
      e.preventDefault();
      const v = formValues(form);
      const fixed = v.rule === 'fixed';
      const body = {
        organisation_id: Number(v.organisation_id), title: v.title, description: v.description,
        amount_rule: fixed ? { fixed_fen: fen(v.fixed_yuan) }
          : { base: v.base, rate_bp: Math.round(Number(v.rate_percent) * 100), cap_fen: fen(v.cap_yuan) },
        conditions: {
          kinds: v.kinds, min_grade: v.min_grade, industry_prefixes: words(v.industry_prefixes),
          region_prefixes: words(v.region_prefixes), registered_before: v.registered_before, tags_all: words(v.tags_all),
        },
        budget_fen: fen(v.budget_yuan), notice_from: v.notice_from, notice_until: v.notice_until,
        confirm_until: v.confirm_until,
      };
      try {
        const policy = await api('POST', '/admin/policies', { body });
        toast('已保存为草稿');
        onCreated(policy);
      } catch (err) {
        clear(problem, errorBox(err));
        problem.scrollIntoView({ block: 'center' });
      }
    },
  },
  h('h3', {}, '新建政策（草稿）'),
  field('发布单位', h('select', { name: 'organisation_id', required: true }, orgs.map((o) => h('option', { value: String(o.id) }, o.name)))),
  field('政策名称', h('input', { name: 'title', required: true, maxlength: 100 })),
  field('政策说明', h('textarea', { name: 'description', maxlength: 2000 })),
  h('fieldset', { class: 'field' }, h('legend', {}, '兑现金额'),
    h('label', { class: 'check' }, h('input', { type: 'radio', name: 'rule', value: 'fixed', checked: true }), '固定金额'),
    h('label', { class: 'check' }, h('input', { type: 'radio', name: 'rule', value: 'rate' }), '按比例'),
    field('固定金额（元/户）', h('input', { name: 'fixed_yuan', type: 'number', min: 0.01, step: 0.01, inputmode: 'decimal' })),
    field('比例基数', h('select', { name: 'base' }, Object.entries(BASE_WORDS).map(([k, w]) => h('option', { value: k }, w)))),
    h('div', { class: 'row' },
      field('比例（%）', h('input', { name: 'rate_percent', type: 'number', min: 0.01, max: 100, step: 0.01, inputmode: 'decimal' })),
      field('单户上限（元）', h('input', { name: 'cap_yuan', type: 'number', min: 0.01, step: 0.01, inputmode: 'decimal' })))),
  h('fieldset', { class: 'field' }, h('legend', {}, '适用条件'),
    ['enterprise', 'institution'].map((k) => h('label', { class: 'check' },
      h('input', { type: 'checkbox', name: 'kinds', value: k, checked: k === 'enterprise' }), KIND_WORDS[k])),
    field('最低公共信用等级', h('select', { name: 'min_grade' }, h('option', { value: '' }, '不限'),
      ['A', 'B', 'C'].map((g) => h('option', { value: g }, `${g}级及以上`)))),
    field('行业代码前缀', h('input', { name: 'industry_prefixes', placeholder: 'C 或 C39、3971' }), 'GB/T 4754，多个用逗号分隔'),
    field('地区代码前缀', h('input', { name: 'region_prefixes', placeholder: '4413' }), '行政区划代码，多个用逗号分隔'),
    field('成立日期早于', h('input', { name: 'registered_before', type: 'date' })),
    field('须具备的标签', h('input', { name: 'tags_all', placeholder: '高新技术企业' }), '多个用逗号分隔'),
    h('p', { class: 'small muted' }, '红码或 D 级企业始终不予兑现。')),
  field('预算（元）', h('input', { name: 'budget_yuan', type: 'number', min: 0, step: 0.01, inputmode: 'decimal' }), '不填则不限；预算不足时 A 级企业优先'),
  h('div', { class: 'row' },
    field('公示开始', h('input', { name: 'notice_from', type: 'date', required: true, value: day })),
    field('公示结束', h('input', { name: 'notice_until', type: 'date', required: true }))),
  field('确认期限', h('input', { name: 'confirm_until', type: 'date' }), '企业须在此日期前一键确认'),
  problem,
  h('div', { class: 'btn-row' },
    h('button', { type: 'button', class: 'weui-btn weui-btn_default', onclick: () => form.remove() }, '取消'),
    h('button', { type: 'submit', class: 'weui-btn weui-btn_primary' }, '保存草稿')));
  return form;
}

async function list(main, ctx) {
  const page = await api('GET', '/admin/policies', { query: { limit: 100 } });
  const formBox = h('div');
  clear(main,
    h('button', {
      type: 'button', class: 'weui-btn weui-btn_primary btn-block',
      onclick: async () => {
        try {
          clear(formBox, await createForm(ctx, (p) => ctx.go(`policies/${p.id}`)));
          formBox.querySelector('input[name=title]').focus();
        } catch (err) {
          clear(formBox, errorBox(err));
        }
      },
    }, '新建政策'),
    formBox,
    page.items.length ? h('ul', { class: 'list', id: 'policies' }, page.items.map((p) => h('li', { dataset: { policy: p.id } },
      h('div', { class: 'spread' }, h('a', { class: 'title', href: `#/policies/${p.id}` }, p.title), policyPill(p.state)),
      h('p', { class: 'small muted' }, `${p.organisation.name} · ${amountWords(p.amount_rule)}`),
      h('a', { class: 'weui-btn weui-btn_default', href: `#/policies/${p.id}` }, p.state === 'draft' ? '预览与发布' : '兑现进度'))))
      : h('p', { class: 'empty' }, '还没有政策。'));
}

// --- one policy ----------------------------------------------------------------------------------------

function statsView(s) {
  return h('section', { class: 'card', id: 'stats' },
    h('h3', {}, '兑现进度'),
    h('table', { class: 'totals' },
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, '状态'), h('th', { scope: 'col' }, '户数'))),
      h('tbody', {}, STATE_ORDER.map((k) => h('tr', { dataset: { state: k } },
        h('th', { scope: 'row' }, OFFER_STATE_WORDS[k]), h('td', {}, String(s.counts[k] || 0)))))),
    h('dl', { class: 'facts small' },
      h('dt', {}, '预算'), h('dd', {}, s.budget_fen === null ? '不限' : fenText(s.budget_fen)),
      h('dt', {}, '已占用'), h('dd', {}, fenText(s.committed_fen)),
      h('dt', {}, '企业已确认'), h('dd', {}, fenText(s.confirmed_fen)),
      h('dt', {}, '已拨付'), h('dd', {}, fenText(s.disbursed_fen)),
      h('dt', {}, '已确认到账'), h('dd', {}, fenText(s.received_fen)),
      s.remaining_fen === null ? null : [h('dt', {}, '预算剩余'), h('dd', {}, fenText(s.remaining_fen))]));
}

function offerRow(o, reload, problem) {
  const act = async (path, body, done) => {
    try {
      await api('POST', path, { body });
      toast(done);
      reload();
    } catch (err) {
      clear(problem, errorBox(err));
    }
  };
  return h('li', { dataset: { offer: o.id, state: o.state } },
    h('div', { class: 'spread' }, h('span', { class: 'title' }, `${o.subject.name}`), offerPill(o.state)),
    h('p', { class: 'small muted' }, `${o.subject.identifier}${o.grade ? ` · ${o.grade}级` : ''} · ${yuanText(o.amount)}`),
    o.reason_text ? h('p', { class: 'small' }, '暂缓原因：', o.reason_text) : null,
    o.note ? h('p', { class: 'small' }, '说明：', o.note) : null,
    o.payment_reference ? h('p', { class: 'small' }, '拨付凭证号：', o.payment_reference) : null,
    o.actions.includes('release') || o.actions.includes('cancel') ? h('div', { class: 'btn-row' },
      o.actions.includes('release') ? h('button', {
        type: 'button', class: 'weui-btn weui-btn_default', dataset: { action: 'release' },
        onclick: () => act(`/admin/offers/${o.id}/release`, {}, '已恢复办理'),
      }, '恢复办理') : null,
      o.actions.includes('cancel') ? h('button', {
        type: 'button', class: 'weui-btn weui-btn_default', dataset: { action: 'cancel' },
        onclick: async () => {
          const answer = await dialog({ title: `撤销：${o.subject.name}`, message: '撤销后资金退回预算，理由将告知企业。', confirm: '撤销', danger: true, askReason: true });
          if (answer) act(`/admin/offers/${o.id}/cancel`, { note: answer.reason }, '已撤销');
        },
      }, '撤销') : null) : null);
}

async function one(main, ctx, id) {
  const [policy, stats] = await Promise.all([
    api('GET', `/admin/policies/${id}`), api('GET', `/admin/policies/${id}/stats`),
  ]);
  const reload = () => ctx.go(`policies/${id}`);
  const problem = h('div', { class: 'problem' });
  const result = h('div');
  const offersBox = h('div');
  let filter = '';

  const run = async (button, fn) => {
    button.disabled = true;
    clear(problem);
    try {
      await fn();
    } catch (err) {
      clear(problem, errorBox(err));
    } finally {
      button.disabled = false;
    }
  };

  async function loadOffers() {
    const page = await api('GET', `/admin/policies/${id}/offers`, { query: { state: filter, limit: 200 } });
    clear(offersBox, page.items.length ? h('ul', { class: 'list', id: 'policy-offers' }, page.items.map((o) => offerRow(o, reload, problem)))
      : h('p', { class: 'empty' }, policy.state === 'draft' ? '草稿不推送；点击“预览匹配”查看符合条件的企业。' : '没有该状态的事项。'));
  }

  const buttons = [];
  if (policy.state === 'draft') {
    buttons.push(h('button', {
      type: 'button', class: 'weui-btn weui-btn_default', dataset: { action: 'preview' },
      onclick: (e) => run(e.currentTarget, async () => {
        clear(result, matchSummary(await api('POST', `/admin/policies/${id}/match`, { body: {} }), false));
        await loadOffers();
      }),
    }, '预览匹配'));
    buttons.push(h('button', {
      type: 'button', class: 'weui-btn weui-btn_primary', dataset: { action: 'publish' },
      onclick: (e) => run(e.currentTarget, async () => {
        const ok = await dialog({ title: '发布并推送？', message: '发布后立即匹配，符合条件的企业将收到推送，一键确认即可享受。发布后条件和金额不能再改。', confirm: '发布' });
        if (!ok) return;
        const out = await api('POST', `/admin/policies/${id}/publish`, { body: {} });
        sessionStorage.setItem('xinma.policy.match', JSON.stringify(out.match));
        reload();
      }),
    }, '发布并推送'));
  } else if (policy.state === 'published') {
    buttons.push(h('button', {
      type: 'button', class: 'weui-btn weui-btn_default', dataset: { action: 'match' },
      onclick: (e) => run(e.currentTarget, async () => {
        const out = await api('POST', `/admin/policies/${id}/match`, { body: {} });
        sessionStorage.setItem('xinma.policy.match', JSON.stringify(out));
        reload();
      }),
    }, '重新匹配'));
    buttons.push(h('button', {
      type: 'button', class: 'weui-btn weui-btn_warn', dataset: { action: 'close' },
      onclick: (e) => run(e.currentTarget, async () => {
        const ok = await dialog({ title: '关闭政策？', message: '关闭后尚未确认的企业不能再确认（事项过期并通知企业）；已确认的仍可审核拨付。', confirm: '关闭', danger: true });
        if (!ok) return;
        await api('POST', `/admin/policies/${id}/close`, { body: {} });
        toast('已关闭');
        reload();
      }),
    }, '关闭政策'));
  }

  const payForm = h('form', {
    class: 'card', id: 'pay-form',
    onsubmit: (e) => {
      e.preventDefault();
      const v = formValues(payForm);
      run(payForm.querySelector('button[type=submit]'), async () => {
        const out = await api('POST', `/admin/policies/${id}/disbursements`, { body: { payment_reference: v.payment_reference, all_approved: true } });
        toast(`已拨付 ${out.moved} 户，共 ${fenText(out.total_fen)}${out.held ? `；暂缓 ${out.held} 户` : ''}`);
        reload();
      });
    },
  },
  h('h3', {}, `拨付（已审核 ${stats.counts.approved} 户）`),
  field('拨付凭证号', h('input', { name: 'payment_reference', required: true, maxlength: 64, pattern: '[A-Za-z0-9][A-Za-z0-9._:\\/\\-]{0,63}', autocomplete: 'off' }),
    '银行或国库支付凭证号；一个凭证号只能用一次'),
  h('button', { type: 'submit', class: 'weui-btn weui-btn_primary btn-block', disabled: !stats.counts.approved }, '拨付全部已审核'));

  const approve = h('section', { class: 'card', id: 'approve' },
    h('h3', {}, `审核（企业已确认 ${stats.counts.confirmed} 户）`),
    h('p', { class: 'small muted' }, '审核时再次核查信用：红码或 D 级企业暂缓兑现。'),
    h('button', {
      type: 'button', class: 'weui-btn weui-btn_primary btn-block', dataset: { action: 'approve' }, disabled: !stats.counts.confirmed,
      onclick: (e) => run(e.currentTarget, async () => {
        const out = await api('POST', `/admin/policies/${id}/approve`, { body: { all_confirmed: true } });
        toast(`已审核通过 ${out.moved} 户${out.held ? `；暂缓 ${out.held} 户` : ''}`);
        reload();
      }),
    }, '审核通过全部已确认'));

  const last = sessionStorage.getItem('xinma.policy.match');
  sessionStorage.removeItem('xinma.policy.match');
  if (last) clear(result, matchSummary(JSON.parse(last), true));

  const select = h('select', {
    onchange: (e) => { filter = e.target.value; loadOffers().catch((err) => clear(offersBox, errorBox(err))); },
  }, h('option', { value: '' }, '全部状态'), STATE_ORDER.map((k) => h('option', { value: k }, OFFER_STATE_WORDS[k])));

  clear(main,
    h('section', { class: 'card', id: 'policy', dataset: { policy: id, state: policy.state } },
      h('div', { class: 'spread' }, h('h2', { class: 'offer-title' }, policy.title), policyPill(policy.state)),
      h('p', { class: 'small muted' }, policy.organisation.name),
      policy.description ? h('p', { class: 'small' }, policy.description) : null,
      h('dl', { class: 'facts small' },
        h('dt', {}, '金额'), h('dd', {}, amountWords(policy.amount_rule)),
        h('dt', {}, '条件'), h('dd', {}, h('ul', { class: 'plain' }, conditionWords(policy.conditions).map((w) => h('li', {}, w)))),
        h('dt', {}, '预算'), h('dd', {}, policy.budget_fen === null ? '不限' : fenText(policy.budget_fen)),
        h('dt', {}, '公示期'), h('dd', {}, `${policy.notice_from} 至 ${policy.notice_until}`),
        policy.confirm_until ? [h('dt', {}, '确认期限'), h('dd', {}, policy.confirm_until)] : null,
        policy.published_at ? [h('dt', {}, '发布'), h('dd', {}, fmtDateTime(policy.published_at))] : null),
      buttons.length ? h('div', { class: 'btn-row' }, buttons) : null),
    problem, result,
    policy.state === 'draft' ? null : [statsView(stats), approve, payForm],
    h('h3', {}, policy.state === 'draft' ? '预览的企业' : '企业事项'),
    policy.state === 'draft' ? null : field('状态', select),
    offersBox,
    h('a', { href: '#/policies', class: 'back' }, '← 全部政策'));
  await loadOffers();
}

export default {
  name: 'policies',
  title: '政策兑现',
  tab: '政策',
  roles: ['platform_admin', 'org_admin'],
  when: (who) => isPlatformAdmin(who.me) || administered(who).length > 0,
  async render(main, ctx) {
    const id = Number(ctx.params[0]);
    if (ctx.params[0] && Number.isInteger(id) && id > 0) await one(main, ctx, id);
    else await list(main, ctx);
    return null;
  },
};
