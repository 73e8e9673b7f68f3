// 单位管理 (organisation admin): publish and edit measures, manage clerks (and invite them through WeChat),
// see redemptions and totals.

import { api } from '../api.js';
import { drawQR } from '../qr.js';
import server from '../server.js';
import {
  clear, COLOUR_WORDS, colourPill, dialog, errorBox, field, fmtDateTime, formValues, h, KIND_WORDS, limitText,
  PERIOD_WORDS, reasonText, ROLE_WORDS, statusPill, toast, today,
} from '../ui.js';

const TABS = [['measures', '激励措施'], ['members', '工作人员'], ['redemptions', '核销记录']];

function numberOrNull(v) {
  return v === null || v === undefined || v === '' ? null : Number(v);
}

function measureForm(org, members, existing, onDone) {
  const m = existing || {};
  const problem = h('div');
  const checks = (name, options, chosen) => h('fieldset', { class: 'field' }, h('legend', {}, name === 'eligible_colours' ? '适用码色' : '适用主体'),
    options.map(([value, label]) => h('label', { class: 'check' },
      h('input', { type: 'checkbox', name, value, checked: (chosen || []).includes(value) }), label)));
  const clerks = members.filter((a) => a.role === 'clerk' || a.role === 'org_admin');
  const form = h('form', {
    class: 'card', id: 'measure-form',
    onsubmit: async (e) => {
      e.preventDefault();
      const v = formValues(form);
      const body = {
        title: v.title, description: v.description, scenario: v.scenario,
        eligible_colours: v.eligible_colours, eligible_kinds: v.eligible_kinds, min_grade: v.min_grade,
        limit_count: numberOrNull(v.limit_count), limit_period: v.limit_count ? v.limit_period : null,
        stock_total: numberOrNull(v.stock_total), valid_from: v.valid_from, valid_until: v.valid_until,
        venues: (v.venues || '').split('\n').map((s) => s.trim()).filter(Boolean),
        clerk_ids: (v.clerk_ids || []).map(Number),
      };
      try {
        if (existing) await api('PATCH', `/incentives/${existing.id}`, { body });
        else await api('POST', `/organisations/${org.id}/incentives`, { body });
        toast(existing ? '已保存' : '已发布');
        onDone();
      } catch (err) {
        clear(problem, errorBox(err));
        problem.scrollIntoView({ block: 'center' });
      }
    },
  },
  h('h3', {}, existing ? `编辑：${m.title}` : '发布新措施'),
  problem,
  field('名称', h('input', { name: 'title', required: true, maxlength: 100, value: m.title || '' })),
  field('说明', h('textarea', { name: 'description', maxlength: 2000, value: m.description || '' })),
  field('场景', h('select', { name: 'scenario', required: true, value: m.scenario || 'other' },
    Object.entries(server.scenarios).map(([k, label]) => h('option', { value: k }, label)))),
  checks('eligible_colours', ['green', 'blue', 'red'].map((c) => [c, COLOUR_WORDS[c]]), m.eligible_colours || ['green']),
  checks('eligible_kinds', Object.entries(KIND_WORDS), m.eligible_kinds || ['person']),
  field('最低企业信用等级', h('select', { name: 'min_grade', value: m.min_grade || '' },
    h('option', { value: '' }, '不限'), ['A', 'B', 'C', 'D'].map((g) => h('option', { value: g }, `${g}级`))), '仅对企业、机构适用'),
  h('div', { class: 'row' },
    field('每人次数上限', h('input', { name: 'limit_count', type: 'number', min: 1, inputmode: 'numeric', value: m.limit_count ?? '' }), '不填则不限'),
    field('周期', h('select', { name: 'limit_period', value: m.limit_period || 'day' },
      Object.entries(PERIOD_WORDS).map(([k, label]) => h('option', { value: k }, label))))),
  field('总名额', h('input', { name: 'stock_total', type: 'number', min: 0, inputmode: 'numeric', value: m.stock_total ?? '' }), '不填则不限'),
  h('div', { class: 'row' },
    field('开始日期', h('input', { name: 'valid_from', type: 'date', value: m.valid_from || '' })),
    field('结束日期', h('input', { name: 'valid_until', type: 'date', value: m.valid_until || '' }))),
  field('地点（每行一个）', h('textarea', { name: 'venues', value: (m.venues || []).join('\n') })),
  clerks.length ? h('fieldset', { class: 'field' }, h('legend', {}, '可核销的工作人员（不选则全部）'),
    clerks.map((a) => h('label', { class: 'check' },
      h('input', { type: 'checkbox', name: 'clerk_ids', value: String(a.account_id), checked: (m.clerk_ids || []).includes(a.account_id) }),
      a.login))) : null,
  h('div', { class: 'btn-row' },
    h('button', { type: 'button', class: 'weui-btn weui-btn_default', onclick: onDone }, '取消'),
    h('button', { type: 'submit', class: 'weui-btn weui-btn_primary' }, existing ? '保存' : '发布')));
  return form;
}

async function measuresTab(box, org, reload) {
  const [list, members] = await Promise.all([
    api('GET', `/organisations/${org.id}/incentives`, { query: { limit: 200 } }),
    api('GET', `/organisations/${org.id}/members`, { query: { limit: 200 } }),
  ]);
  const formBox = h('div');
  const openForm = (existing) => {
    clear(formBox, measureForm(org, members.items, existing, reload));
    formBox.scrollIntoView({ block: 'start' });
    formBox.querySelector('input').focus();
  };
  const problem = h('div');
  clear(box,
    h('button', { type: 'button', class: 'weui-btn weui-btn_primary btn-block', onclick: () => openForm(null) }, '发布新措施'),
    formBox, problem,
    list.items.length ? h('ul', { class: 'list', id: 'measures' }, list.items.map((m) => h('li', { dataset: { incentive: m.id } },
      h('div', { class: 'spread' }, h('span', { class: 'title' }, m.title), statusPill(m.status)),
      h('p', { class: 'small muted' }, `${m.scenario_name} · ${m.eligible_colours.map((c) => COLOUR_WORDS[c]).join('、')} · `
        + `${m.eligible_kinds.map((k) => KIND_WORDS[k]).join('、')}${m.min_grade ? ` · ${m.min_grade}级及以上` : ''}`),
      h('dl', { class: 'facts small' },
        h('dt', {}, '次数'), h('dd', {}, limitText(m)),
        h('dt', {}, '名额'), h('dd', {}, m.stock_total === null ? `不限（已用 ${m.stock_used}）` : `${m.stock_used} / ${m.stock_total}`),
        h('dt', {}, '日期'), h('dd', {}, `${m.valid_from || '即日'} 至 ${m.valid_until || '长期'}`)),
      h('div', { class: 'btn-row' },
        h('button', { type: 'button', class: 'weui-btn weui-btn_default', onclick: () => openForm(m) }, '编辑'),
        h('button', {
          type: 'button', class: `weui-btn ${m.status === 'open' ? 'weui-btn_warn' : 'weui-btn_primary'}`,
          onclick: async () => {
            const closing = m.status === 'open';
            if (closing && !(await dialog({ title: '关闭该措施？', message: '关闭后扫码一律不予核销，可随时重新开放。', confirm: '关闭', danger: true }))) return;
            try {
              await api('POST', `/incentives/${m.id}/${closing ? 'close' : 'reopen'}`, { body: {} });
              toast(closing ? '已关闭' : '已重新开放');
              reload();
            } catch (e) {
              clear(problem, errorBox(e));
            }
          },
        }, m.status === 'open' ? '关闭' : '重新开放')))))
      : h('p', { class: 'empty' }, '还没有发布措施。'));
}

async function membersTab(box, org, reload) {
  const members = await api('GET', `/organisations/${org.id}/members`, { query: { limit: 200 } });
  const problem = h('div');
  const invite = h('div');
  const add = h('form', {
    class: 'card',
    onsubmit: async (e) => {
      e.preventDefault();
      const v = formValues(add);
      try {
        await api('POST', `/organisations/${org.id}/members`, { body: { login: v.login, role: v.role } });
        toast('已添加');
        reload();
      } catch (err) {
        clear(problem, errorBox(err));
      }
    },
  },
  h('h3', {}, '添加人员'),
  field('账号', h('input', { name: 'login', required: true, maxlength: 64, autocomplete: 'off' }), '对方须已注册并通过审核'),
  field('角色', h('select', { name: 'role' }, h('option', { value: 'clerk' }, '工作人员（扫码核销）'), h('option', { value: 'org_admin' }, '单位管理员'))),
  h('button', { type: 'submit', class: 'weui-btn weui-btn_primary btn-block' }, '添加'));

  async function makeInvite() {
    try {
      const r = await api('POST', `/organisations/${org.id}/clerk-invites`, { body: {} });
      const canvas = h('canvas', { role: 'img', 'aria-label': '工作人员邀请二维码' });
      clear(invite, h('div', { class: 'card', id: 'invite' },
        h('h3', {}, '工作人员邀请码'),
        h('div', { class: 'qr-frame' }, canvas),
        h('p', {}, `请让工作人员用微信扫描。一次有效，${fmtDateTime(r.expires_at)} 前使用。`)));
      drawQR(canvas, r.qrcode.url, { cssSize: 260 });
    } catch (e) {
      clear(invite, errorBox(e));
    }
  }

  clear(box, problem,
    h('ul', { class: 'list', id: 'members' }, members.items.map((a) => h('li', { class: 'recent-item' },
      h('div', {}, h('strong', {}, a.login), ' ', h('span', { class: 'pill pill-info' }, ROLE_WORDS[a.role] || a.role),
        a.status !== 'approved' ? [' ', statusPill(a.status)] : null),
      h('button', {
        type: 'button', class: 'weui-btn weui-btn_warn', 'aria-label': `移除 ${a.login}`,
        onclick: async () => {
          if (!(await dialog({ title: `移除 ${a.login}？`, message: '移除后该账号不能再为本单位核销。', confirm: '移除', danger: true }))) return;
          try {
            await api('DELETE', `/organisations/${org.id}/members/${a.account_id}`);
            toast('已移除');
            reload();
          } catch (e) {
            clear(problem, errorBox(e));
          }
        },
      }, '移除')))),
    h('button', { type: 'button', class: 'weui-btn weui-btn_default btn-block', onclick: makeInvite }, '生成微信邀请码'),
    invite, add);
}

async function redemptionsTab(box, org) {
  const list = await api('GET', `/organisations/${org.id}/incentives`, { query: { limit: 200 } });
  const results = h('div');
  const filters = h('form', {
    class: 'card',
    onsubmit: (e) => { e.preventDefault(); load(); },
  },
  h('div', { class: 'row' },
    field('日期', h('input', { name: 'date', type: 'date', value: today() })),
    field('措施', h('select', { name: 'incentive_id' }, h('option', { value: '' }, '全部'),
      list.items.map((m) => h('option', { value: String(m.id) }, m.title))))),
  h('button', { type: 'submit', class: 'weui-btn weui-btn_default btn-block' }, '查询'));

  async function load() {
    const v = formValues(filters);
    try {
      const page = await api('GET', `/organisations/${org.id}/redemptions`, { query: { date: v.date, incentive_id: v.incentive_id, limit: 100 } });
      clear(results,
        h('h3', {}, '合计'),
        page.totals.length ? h('table', { class: 'totals', id: 'totals' },
          h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, '措施'), h('th', { scope: 'col' }, '核销'), h('th', { scope: 'col' }, '未通过'), h('th', { scope: 'col' }, '撤销'))),
          h('tbody', {}, page.totals.map((t) => h('tr', {}, h('th', { scope: 'row' }, t.title), h('td', {}, t.redeemed), h('td', {}, t.rejected), h('td', {}, t.voided)))))
          : h('p', { class: 'empty' }, '该日没有扫码记录。'),
        h('h3', {}, `明细（${page.total}）`),
        h('ul', { class: 'list' }, page.items.map((r) => h('li', {},
          h('div', { class: 'spread' }, h('strong', {}, r.incentive),
            r.status === 'rejected' ? h('span', { class: 'pill pill-red' }, '✕ 未通过') : statusPill(r.status)),
          h('p', { class: 'small' }, r.subject ? [r.subject.name, ' ', colourPill(r.subject.colour)] : '无法识别的码'),
          h('p', { class: 'small muted' }, `${fmtDateTime(r.created_at)} · ${r.clerk || ''}${r.venue ? ' · ' + r.venue : ''}`),
          r.reason ? h('p', { class: 'small' }, reasonText(r.reason)) : null))));
    } catch (e) {
      clear(results, errorBox(e));
    }
  }
  clear(box, filters, results);
  await load();
}

export default {
  name: 'org',
  title: '单位管理',
  tab: '单位',
  roles: ['org_admin'],
  async render(main, ctx) {
    const ids = ctx.organisationsOf(ctx.me, 'org_admin');
    const orgs = await Promise.all(ids.map((id) => api('GET', `/organisations/${id}`)));
    let org = orgs.find((o) => String(o.id) === sessionStorage.getItem('xinma.org')) || orgs[0];
    let tab = sessionStorage.getItem('xinma.org.tab') || 'measures';
    const box = h('div', { id: 'org-tab' });
    const reload = () => show();

    async function show() {
      clear(box, h('p', { class: 'empty' }, '正在加载……'));
      try {
        if (tab === 'members') await membersTab(box, org, reload);
        else if (tab === 'redemptions') await redemptionsTab(box, org);
        else await measuresTab(box, org, reload);
      } catch (e) {
        clear(box, errorBox(e));
      }
    }

    const tabs = h('div', { class: 'segments', role: 'tablist' }, TABS.map(([key, label]) => h('button', {
      type: 'button', role: 'tab', 'aria-selected': String(key === tab), dataset: { tab: key },
      onclick: (e) => {
        tab = key;
        sessionStorage.setItem('xinma.org.tab', key);
        for (const b of tabs.children) b.setAttribute('aria-selected', String(b === e.currentTarget));
        show();
      },
    }, label)));
    const picker = orgs.length > 1 ? field('单位', h('select', {
      value: String(org.id),
      onchange: (e) => {
        org = orgs.find((o) => String(o.id) === e.target.value);
        sessionStorage.setItem('xinma.org', String(org.id));
        show();
      },
    }, orgs.map((o) => h('option', { value: String(o.id) }, o.name)))) : null;

    clear(main,
      picker,
      h('section', { class: 'card' }, h('div', { class: 'spread' }, h('strong', {}, org.name), statusPill(org.status))),
      tabs, box);
    await show();
    return null;
  },
};
