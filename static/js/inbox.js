// What the 消息 tab's pages share: the switch between notices, offers and documents, and the offers' one-click
// buttons with their refusals in words.

import { api } from './api.js';
import { dialog, h, OFFER_STATE_WORDS, toast } from './ui.js';

/** 消息 | 政策兑现 | 法律文书, for enterprise agents (the only ones offers and documents are for). */
export function inboxNav(ctx, current) {
  if (!ctx.roles(ctx.me).has('enterprise_agent')) return null;
  const entries = [['notices', '全部消息'], ['offers', '政策兑现'], ['documents', '法律文书']];
  return h('nav', { class: 'segments', 'aria-label': '消息分类' }, entries.map(([name, label]) => h('a', {
    href: '#/' + name, 'aria-current': name === current ? 'page' : null, dataset: { segment: name },
  }, label)));
}

// The enterprise's clicks on an offer (the server lists the ones allowed now in `offer.actions`). Confirm and
// receipt are one click each: nothing is lost by a wrong one that the department's review would not catch.
// Declining gives the money back to the budget, so it asks first.
export const OFFER_ACTIONS = {
  confirm: {
    label: '一键确认享受', primary: true, done: '已确认享受，审核通过后拨付',
    run: (offer) => api('POST', `/offers/${offer.id}/confirm`, { body: {} }),
  },
  receipt: {
    label: '确认已到账', primary: true, done: '已确认到账，本项政策兑现完成',
    run: (offer) => api('POST', `/offers/${offer.id}/receipt`, { body: {} }),
  },
  decline: {
    label: '放弃享受', done: '已放弃本项政策',  // the dialog is the warning; the button does not outshout 确认
    ask: () => dialog({
      title: '放弃享受该政策？', message: '放弃后资金退回预算，不能再确认享受。', confirm: '放弃', danger: true,
      askReason: 'optional',
    }),
    run: (offer, answer) => api('POST', `/offers/${offer.id}/decline`, { body: { note: answer.reason } }),
  },
};

/** Why the server refused a click, with the offer's state now when it says (409 illegal_transition …). */
export function refusalText(error) {
  const state = error && error.detail && error.detail.state;
  const base = (error && error.message) || '操作未完成';
  if (error && error.code === 'offer_expired' && error.detail.confirm_until) {
    return `${base}（确认期限：${error.detail.confirm_until}）`;
  }
  return state ? `${base}。该事项当前状态：${OFFER_STATE_WORDS[state] || state}` : base;
}

/**
 * Buttons for what the enterprise may do with this offer now; `which` limits them (the notices list shows only
 * the one-click ones). onDone(offer) gets the offer as the server left it; onError(error, offer) a refusal.
 */
export function offerButtons(offer, { which = ['confirm', 'receipt', 'decline'], onDone, onError }) {
  return (offer.actions || []).filter((a) => which.includes(a) && OFFER_ACTIONS[a]).map((name) => {
    const action = OFFER_ACTIONS[name];
    return h('button', {
      type: 'button', dataset: { action: name },
      class: `weui-btn ${action.primary ? 'weui-btn_primary' : 'weui-btn_default'}`,
      onclick: async (e) => {
        const button = e.currentTarget;
        const answer = action.ask ? await action.ask() : true;
        if (!answer) return;
        button.disabled = true;
        try {
          const after = await action.run(offer, answer);
          toast(after.repeated ? '已办理过，无需重复操作' : action.done);
          onDone(after);
        } catch (err) {
          button.disabled = false;
          onError(err, offer);
        }
      },
    }, action.label);
  });
}
