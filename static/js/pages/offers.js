// 政策兑现 (免申即享): my enterprises' offers (#/offers) and one offer (#/offers/12): its state, amount and policy,
// the one-click 确认享受 / 确认已到账 and 放弃, why it is held, and a refused click explained with the state now.

import { api } from '../api.js';
import { inboxNav, offerButtons, refusalText } from '../inbox.js';
import { clear, errorBox, fmtDate, fmtDateTime, h, offerPill, yuanText } from '../ui.js';

// What happens next, per state, in words the enterprise needs.
const NEXT = {
  notified: '无需提交任何材料：点击“一键确认享受”即可，审核通过后资金直达企业账户。',
  confirmed: '已收到确认，发布部门审核通过后拨付。',
  approved: '已审核通过，等待拨付。',
  held: '因企业信用状况变化暂缓兑现；信用状况恢复后，由发布部门恢复办理。',
  disbursed: '资金已拨付，请核对企业账户，到账后点击“确认已到账”。',
  received: '本项政策兑现已完成。',
  declined: '您已放弃本项政策，资金已退回预算。',
  expired: '未在确认期限内确认，本项政策已过期。',
  cancelled: '发布部门已撤销本项政策兑现。',
};

// The steps an offer went through, in order, with their times.
const STEPS = [
  ['notified_at', '推送'], ['confirmed_at', '确认享受'], ['declined_at', '放弃'], ['held_at', '暂缓兑现'],
  ['approved_at', '审核通过'], ['disbursed_at', '拨付'], ['received_at', '确认到账'],
];

function offerCard(offer, { onDone, onError, problem }) {
  const p = offer.policy;
  return h('section', { class: 'card offer', dataset: { offer: offer.id, state: offer.state } },
    h('h2', { class: 'offer-title' }, p.title),
    h('p', { class: 'small muted' }, p.organisation),
    h('p', { class: 'amount' }, yuanText(offer.amount)),
    h('p', { class: 'state-line', role: 'status' }, '状态：', offerPill(offer.state)),
    h('p', { class: 'small' }, NEXT[offer.state] || ''),
    offer.state === 'held' && offer.reason_text ? h('p', { class: 'notice' }, '暂缓原因：', offer.reason_text) : null,
    offer.note ? h('p', { class: 'small' }, '说明：', offer.note) : null,
    offer.deadline_passed && offer.state === 'notified' ? h('p', { class: 'error' }, `确认期限 ${p.confirm_until} 已过`) : null,
    h('dl', { class: 'facts small' },
      h('dt', {}, '企业'), h('dd', {}, `${offer.subject.name}（${offer.subject.identifier}）`),
      p.confirm_until ? [h('dt', {}, '确认期限'), h('dd', {}, `${p.confirm_until} 前`)] : null,
      h('dt', {}, '公示期'), h('dd', {}, `${p.notice_from} 至 ${p.notice_until}`),
      offer.payment_reference ? [h('dt', {}, '拨付凭证号'), h('dd', {}, offer.payment_reference)] : null),
    h('ol', { class: 'steps small', 'aria-label': '办理进度' }, STEPS.filter(([k]) => offer[k]).map(([k, label]) => h('li', {},
      h('span', {}, label), ' ', h('span', { class: 'muted' }, fmtDateTime(offer[k]))))),
    problem,
    h('div', { class: 'btn-row' }, offerButtons(offer, { onDone, onError })));
}

async function one(main, ctx, id) {
  const problem = h('div', { class: 'problem' });
  const box = h('div');
  const show = (offer) => clear(box, offerCard(offer, {
    problem,
    onDone: (after) => { clear(problem); show(after); ctx.refreshBadges(); },
    onError: async (err) => {
      // Refused (409: somebody else moved it, or the deadline passed): say why, and show the offer as it is now.
      clear(problem, errorBox({ message: refusalText(err), code: err.code }));
      try { show(await api('GET', `/offers/${id}`)); } catch { /* keep what is shown */ }
    },
  }));
  show(await api('GET', `/offers/${id}`));
  clear(main, inboxNav(ctx, 'offers'), box, h('a', { href: '#/offers', class: 'back' }, '← 全部政策兑现'));
}

async function list(main, ctx) {
  const page = await api('GET', '/me/offers', { query: { limit: 100 } });
  const items = page.items.map((offer) => {
    const li = h('li', { dataset: { offer: offer.id } });
    const problem = h('div', { class: 'problem' });
    const draw = (o) => clear(li,
      h('div', { class: 'spread' }, h('a', { class: 'title', href: `#/offers/${o.id}` }, o.policy.title), offerPill(o.state)),
      h('p', { class: 'amount-small' }, yuanText(o.amount)),
      h('p', { class: 'small muted' }, `${o.policy.organisation}${o.policy.confirm_until && o.state === 'notified'
        ? ` · ${o.policy.confirm_until} 前确认` : ''} · ${fmtDate(o.updated_at)}`),
      problem,
      h('div', { class: 'btn-row' }, offerButtons(o, {
        which: ['confirm', 'receipt'],
        onDone: (after) => { clear(problem); draw(after); ctx.refreshBadges(); },
        onError: async (err) => {
          clear(problem, errorBox({ message: refusalText(err), code: err.code }));
          try { draw(await api('GET', `/offers/${o.id}`)); } catch { /* keep what is shown */ }
        },
      }), h('a', { class: 'weui-btn weui-btn_default', href: `#/offers/${o.id}` }, '查看详情')));
    draw(offer);
    return li;
  });
  clear(main, inboxNav(ctx, 'offers'),
    items.length ? h('ul', { class: 'list', id: 'offers' }, items)
      : h('p', { class: 'empty' }, '暂无政策兑现事项。符合条件的政策会自动推送到这里，无需申请。'));
}

export default {
  name: 'offers',
  title: '政策兑现',
  hidden: true,  // reached from 消息 (its switch, a notice's link, a push's page)
  parent: 'notices',
  roles: ['enterprise_agent'],
  async render(main, ctx) {
    const id = Number(ctx.params[0]);
    if (ctx.params[0] && Number.isInteger(id) && id > 0) await one(main, ctx, id);
    else await list(main, ctx);
    return null;
  },
};
