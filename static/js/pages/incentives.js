// 我的权益: the measures I can use now (by scenario), the ones I cannot and why, and where my code was scanned.

import { api } from '../api.js';
import { holderChoices, holderTabs } from '../holders.js';
import {
  clear, colourPill, errorBox, fmtDateTime, h, limitText, reasonText, remainingText, statusPill,
} from '../ui.js';

function incentiveCard(entry) {
  const i = entry.incentive;
  return h('li', { dataset: { incentive: i.id, usable: String(entry.usable) } },
    h('div', { class: 'spread' },
      h('span', { class: 'title' }, i.title),
      entry.usable ? h('span', { class: 'pill pill-usable' }, '✓ 可使用') : h('span', { class: 'pill pill-red' }, '✕ 暂不可用')),
    h('p', { class: 'muted small' }, `${i.organisation.name} · ${i.scenario_name}`),
    i.description ? h('p', {}, i.description) : null,
    entry.usable ? null : h('p', { class: 'error' }, '原因：', entry.message || entry.reason),
    h('dl', { class: 'facts small' },
      h('dt', {}, '使用限制'), h('dd', {}, limitText(i)),
      entry.usable ? [h('dt', {}, '我的剩余'), h('dd', {}, remainingText(entry.remaining))] : null,
      i.venues && i.venues.length ? [h('dt', {}, '地点'), h('dd', {}, i.venues.join('、'))] : null,
      i.valid_until ? [h('dt', {}, '有效期至'), h('dd', {}, i.valid_until)] : null,
      entry.recent_redemptions.length ? [h('dt', {}, '最近使用'),
        h('dd', {}, entry.recent_redemptions.map((r) => `${fmtDateTime(r.created_at)}${r.status === 'voided' ? '（已撤销）' : ''}`).join('；'))] : null));
}

function byScenario(entries) {
  const groups = new Map();
  for (const e of entries) {
    const key = e.incentive.scenario_name;
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(e);
  }
  return [...groups.entries()].map(([scenario, items]) => h('section', { 'aria-label': scenario },
    h('h3', {}, scenario), h('ul', { class: 'list' }, items.map(incentiveCard))));
}

async function view(subjectId) {
  const [mine, history] = await Promise.all([
    api('GET', '/me/incentives', { query: { subject_id: subjectId } }),
    api('GET', '/me/redemptions', { query: { limit: 20, subject_id: subjectId } }).catch((e) => ({ error: e })),
  ]);
  const s = mine.subject;
  return [
    h('section', { class: 'card' },
      h('div', { class: 'spread' }, h('strong', {}, s.name), colourPill(s.colour)),
      s.grade ? h('p', { class: 'grade' }, `公共信用等级：${s.grade}级`) : null),
    h('h2', {}, `现在可用（${mine.usable.length}）`),
    mine.usable.length ? byScenario(mine.usable) : h('p', { class: 'empty' }, '暂时没有可以使用的激励措施。'),
    h('h2', {}, `暂不可用（${mine.not_usable.length}）`),
    mine.not_usable.length ? h('ul', { class: 'list' }, mine.not_usable.map(incentiveCard))
      : h('p', { class: 'empty' }, '没有。'),
    h('h2', {}, '我的核销记录'),
    history.error ? errorBox(history.error)
      : history.items.length ? h('ul', { class: 'list', id: 'history' }, history.items.map((r) => h('li', {},
        h('div', { class: 'spread' }, h('span', { class: 'title' }, r.incentive),
          r.status === 'rejected' ? h('span', { class: 'pill pill-red' }, '✕ 未通过') : statusPill(r.status)),
        h('p', { class: 'small muted' }, `${r.organisation}${r.venue ? ' · ' + r.venue : ''} · ${fmtDateTime(r.created_at)}`),
        r.reason ? h('p', { class: 'small' }, '原因：', reasonText(r.reason)) : null)))
        : h('p', { class: 'empty' }, '还没有核销记录。'),
  ];
}

export default {
  name: 'incentives',
  title: '我的权益',
  tab: '权益',
  roles: ['citizen', 'enterprise_agent'],
  async render(main, ctx) {
    const choices = holderChoices(ctx.me);
    const box = h('div');
    const show = async (subjectId) => {
      try {
        clear(box, await view(subjectId));
      } catch (e) {
        clear(box, errorBox(e));
      }
    };
    clear(main, holderTabs(choices, choices.length ? choices[0].id : null, show), box);
    await show(choices.length ? choices[0].id : null);
    return null;
  },
};
