// 审核 (platform admin): organisations' onboarding, accounts' registrations and honour declarations, each
// approved, rejected or suspended with a reason.

import { api } from '../api.js';
import { clear, colourPill, dialog, errorBox, fmtDateTime, h, KIND_WORDS, ROLE_WORDS, statusPill, toast } from '../ui.js';

const ORG_KINDS = { department: '部门', institution: '事业单位', enterprise: '企业', merchant: '商户' };
const STATUSES = [['pending', '待审核'], ['approved', '已通过'], ['rejected', '已驳回'], ['suspended', '已停用']];

// Which decisions each state allows (the API's rules: pending→approve|reject; approved→suspend;
// suspended|rejected→approve; declarations: pending only, approve|reject).
function decisions(queue, status) {
  if (queue === 'declarations') return status === 'pending' ? ['approve', 'reject'] : [];
  if (status === 'pending') return ['approve', 'reject'];
  if (status === 'approved') return ['suspend'];
  return ['approve'];
}
const DECISION_WORDS = { approve: '通过', reject: '驳回', suspend: '停用' };

const QUEUES = {
  organisations: {
    label: '入驻单位',
    path: '/admin/organisations',
    describe: (o) => [
      h('div', { class: 'spread' }, h('span', { class: 'title' }, o.name), statusPill(o.status)),
      h('p', { class: 'small muted' }, `${ORG_KINDS[o.kind] || o.kind} · 联系方式：${o.contact || '无'} · 申请于 ${fmtDateTime(o.created_at)}`),
      o.status_reason ? h('p', { class: 'small' }, '理由：', o.status_reason) : null,
    ],
    review: (id) => `/admin/organisations/${id}/review`,
  },
  accounts: {
    label: '账号',
    path: '/admin/accounts',
    describe: (a) => [
      h('div', { class: 'spread' }, h('span', { class: 'title' }, a.login), statusPill(a.status)),
      h('p', { class: 'small muted' }, a.roles.map((r) => ROLE_WORDS[r.role] || r.role).join('、') || '无角色'),
      a.subject ? h('p', { class: 'small' }, `${a.subject.name}（${KIND_WORDS[a.subject.kind] || ''}，${a.subject.identifier}） `, colourPill(a.subject.colour)) : null,
      a.status_reason ? h('p', { class: 'small' }, '理由：', a.status_reason) : null,
    ],
    review: (id) => `/admin/accounts/${id}/review`,
  },
  declarations: {
    label: '荣誉申报',
    path: '/admin/declarations',
    describe: (d) => [
      h('div', { class: 'spread' }, h('span', { class: 'title' }, d.title), statusPill(d.status)),
      h('p', { class: 'small' }, `${d.subject.name}（${KIND_WORDS[d.subject.kind] || ''}） `, colourPill(d.subject.colour)),
      h('dl', { class: 'facts small' },
        h('dt', {}, '类别'), h('dd', {}, d.category),
        h('dt', {}, '授予单位'), h('dd', {}, d.issued_by),
        h('dt', {}, '授予日期'), h('dd', {}, d.awarded_on),
        h('dt', {}, '证明材料'), h('dd', {}, d.evidence)),
      d.review_reason ? h('p', { class: 'small' }, '审核意见：', d.review_reason) : null,
    ],
    review: (id) => `/admin/declarations/${id}/review`,
  },
};

export default {
  name: 'admin',
  title: '审核',
  tab: '审核',
  roles: ['platform_admin'],
  async render(main) {
    let queue = sessionStorage.getItem('xinma.admin.queue') || 'organisations';
    let status = 'pending';
    const box = h('div', { id: 'queue' });
    const problem = h('div');

    async function load() {
      clear(box, h('p', { class: 'empty' }, '正在加载……'));
      const q = QUEUES[queue];
      try {
        const page = await api('GET', q.path, { query: { status, limit: 100 } });
        clear(box, page.items.length ? h('ul', { class: 'list' }, page.items.map((item) => h('li', { dataset: { id: item.id } },
          q.describe(item),
          h('div', { class: 'btn-row' }, decisions(queue, item.status).map((d) => h('button', {
            type: 'button', class: `weui-btn ${d === 'approve' ? 'weui-btn_primary' : 'weui-btn_warn'}`,
            onclick: async () => {
              const answer = await dialog({
                title: `${DECISION_WORDS[d]}：${item.name || item.login || item.title}`,
                message: d === 'approve' ? (queue === 'declarations' ? '通过后记入信用档案，码色随之更新。' : '确认通过？') : null,
                confirm: DECISION_WORDS[d], danger: d !== 'approve', askReason: d !== 'approve',
              });
              if (!answer) return;
              try {
                await api('POST', q.review(item.id), { body: { decision: d, reason: answer.reason || null } });
                toast(`已${DECISION_WORDS[d]}`);
                load();
              } catch (e) {
                clear(problem, errorBox(e));
              }
            },
          }, DECISION_WORDS[d])))))) : h('p', { class: 'empty' }, '没有记录。'));
      } catch (e) {
        clear(box, errorBox(e));
      }
    }

    const tabs = h('div', { class: 'segments', role: 'tablist' }, Object.entries(QUEUES).map(([key, q]) => h('button', {
      type: 'button', role: 'tab', 'aria-selected': String(key === queue), dataset: { queue: key },
      onclick: (e) => {
        queue = key;
        sessionStorage.setItem('xinma.admin.queue', key);
        for (const b of tabs.children) b.setAttribute('aria-selected', String(b === e.currentTarget));
        load();
      },
    }, q.label)));
    const filter = h('label', { class: 'field' }, h('span', {}, '状态'), h('select', {
      onchange: (e) => { status = e.target.value; load(); },
    }, STATUSES.map(([k, label]) => h('option', { value: k, selected: k === status }, label))));

    clear(main, tabs, filter, problem, box);
    await load();
    return null;
  },
};
