// 消息: what I (or my enterprises) were told — redemption receipts, policy offers (免申即享) with their one-click
// buttons, legal documents (法律文书送达) with open and acknowledge. A notice's `kind` picks its view from KINDS.

import { api, ApiError } from '../api.js';
import { inboxNav, offerButtons, refusalText } from '../inbox.js';
import {
  clear, documentPill, errorBox, fmtDateTime, h, offerPill, reasonText, statusPill, toast, yuanText,
} from '../ui.js';

const NOTICES_PATH = '/me/notices';

/** An offer's notice (handlers/offers.py NOTICES: its label is the title's prefix there). The body: offer_id,
 * policy_id, policy_title, amount, amount_fen, state (when told), lines (what the push showed), and per kind
 * confirm_until (matched), reason (held), note (cancelled), payment_reference (disbursed). */
function offerKind(label) {
  return {
    label,
    facts: (b) => [['政策', b.policy_title], ['金额', yuanText(b.amount)], ['确认期限', b.confirm_until],
      ['拨付凭证号', b.payment_reference], ['说明', b.note]],
    target: (b) => (b.offer_id ? { type: 'offer', id: b.offer_id } : null),
  };
}

/**
 * How each kind of notice looks: a label, the facts of its body (a body's `lines` — what the push showed — win
 * when present), and what it is about (`target`: an offer or a document, whose state *now* decides the buttons:
 * a notice says what happened then, the offer says what can be done now).
 */
export const KINDS = {
  // handlers/redemptions.py: redemption_id, incentive_id, organisation, at
  redemption: {
    label: '核销回执',
    facts: (b) => [['单位', b.organisation], ['时间', fmtDateTime(b.at)]],
  },
  redemption_voided: {
    label: '撤销回执',
    facts: (b) => [['单位', b.organisation], ['撤销时间', fmtDateTime(b.at)], ['说明', '该次核销已撤销，名额已退回']],
  },
  offer_matched: offerKind('免申即享'),
  offer_confirmed: offerKind('已确认'),
  offer_declined: offerKind('已放弃'),
  offer_approved: offerKind('待拨付'),
  offer_held: offerKind('暂缓兑现'),
  offer_released: offerKind('恢复办理'),
  offer_disbursed: offerKind('已拨付'),
  offer_receipt: offerKind('已确认到账'),
  offer_cancelled: offerKind('已撤销'),
  offer_expired: offerKind('已过期'),
  // handlers/documents.py: document_id, case_number, issuer, lines
  legal_document: {
    label: '法律文书送达',
    facts: (b) => [['案号', b.case_number], ['送达机关', b.issuer]],
    target: (b) => (b.document_id ? { type: 'document', id: b.document_id } : null),
  },
};

const UNKNOWN = { label: '通知', facts: () => [] };

function kindOf(notice) {
  return KINDS[notice.kind] || (notice.kind.startsWith('offer_') ? offerKind('政策兑现') : UNKNOWN);
}

/** The current state of what the notices are about: my offers and my documents, one request each. */
async function liveState(items) {
  const wanted = new Set(items.map((n) => (kindOf(n).target || (() => null))(n.body || {})).filter(Boolean).map((t) => t.type));
  const [offers, documents] = await Promise.all([
    wanted.has('offer') ? api('GET', '/me/offers', { query: { limit: 200 } }).catch(() => null) : null,
    wanted.has('document') ? api('GET', '/documents', { query: { limit: 200 } }).catch(() => null) : null,
  ]);
  return {
    offer: new Map(((offers && offers.items) || []).map((o) => [o.id, o])),
    document: new Map(((documents && documents.items) || []).map((d) => [d.id, d])),
  };
}

function noticeItem(notice, live, ctx) {
  const kind = kindOf(notice);
  const body = notice.body || {};
  const target = kind.target ? kind.target(body) : null;
  const li = h('li', { dataset: { kind: notice.kind, notice: notice.id } });
  const problem = h('div', { class: 'problem' });

  function draw(current) {
    const facts = kind.facts(body).filter(([, v]) => v !== undefined && v !== null && v !== '');
    const page = target && (target.type === 'offer' ? 'offers' : 'documents');
    const link = target && ctx.hasPage(page) ? h('a', {
      class: 'weui-btn weui-btn_default', href: `#/${page}/${target.id}`, dataset: { action: 'open' },
    }, target.type === 'offer' ? '查看详情' : '查看文书') : null;
    let now = null;
    let buttons = [];
    if (target && target.type === 'offer' && current) {
      now = h('p', { class: 'small now' }, '当前状态：', offerPill(current.state));
      buttons = offerButtons(current, {
        which: ['confirm', 'receipt'],
        onDone: (after) => { clear(problem); draw(after); ctx.refreshBadges(); },
        onError: async (err) => {
          clear(problem, errorBox({ message: refusalText(err), code: err.code }));
          try { draw(await api('GET', `/offers/${current.id}`)); } catch { /* keep what is shown */ }
        },
      });
    } else if (target && target.type === 'document' && current) {
      now = h('p', { class: 'small now' }, '当前状态：', documentPill(current));
      if (current.role === 'recipient' && !current.acknowledged_at) {
        buttons = [h('button', {
          type: 'button', class: 'weui-btn weui-btn_primary', dataset: { action: 'acknowledge' },
          onclick: async (e) => {
            const button = e.currentTarget;
            button.disabled = true;
            try {
              const after = await api('POST', `/documents/${current.id}/acknowledge`, { body: {} });
              toast('已签收');
              clear(problem);
              draw(after);
            } catch (err) {
              button.disabled = false;
              clear(problem, errorBox(err));
            }
          },
        }, '签收')];
      }
    }
    clear(li,
      h('div', { class: 'spread' },
        h('span', { class: 'title' }, notice.title),
        h('span', { class: `pill ${notice.read_at ? 'pill-grey' : 'pill-info'}` }, notice.read_at ? kind.label : `新 · ${kind.label}`)),
      h('p', { class: 'small muted' }, fmtDateTime(notice.created_at)),
      Array.isArray(body.lines) && body.lines.length ? h('div', { class: 'small lines' }, body.lines.map((line) => h('p', {}, line)))
        : facts.length ? h('dl', { class: 'facts small' }, facts.map(([k, v]) => [h('dt', {}, k), h('dd', {}, String(v))])) : null,
      now,
      problem,
      buttons.length || link ? h('div', { class: 'btn-row' }, buttons, link) : null);
  }

  draw(target ? live[target.type].get(target.id) : null);
  return li;
}

/** Without the notices API (an older server), the receipts still exist: they are my redemptions. */
async function receiptsFallback() {
  const page = await api('GET', '/me/redemptions', { query: { limit: 30 } });
  return h('section', {},
    h('p', { class: 'info' }, '消息中心暂未开通，以下是您的核销回执。'),
    page.items.length ? h('ul', { class: 'list', id: 'receipts' }, page.items.map((r) => h('li', { dataset: { kind: 'receipt' } },
      h('div', { class: 'spread' }, h('span', { class: 'title' }, r.incentive),
        r.status === 'rejected' ? h('span', { class: 'pill pill-red' }, '✕ 未通过') : statusPill(r.status)),
      h('p', { class: 'small muted' }, `${r.organisation} · ${fmtDateTime(r.created_at)}`),
      r.reason ? h('p', { class: 'small' }, '原因：', reasonText(r.reason)) : null)))
      : h('p', { class: 'empty' }, '暂无消息。'));
}

export default {
  name: 'notices',
  title: '消息',
  tab: '消息',
  roles: ['citizen', 'enterprise_agent'],
  /** The tab's number: my unread notices. */
  async badge() {
    const page = await api('GET', NOTICES_PATH, { query: { unread: true, limit: 1 } });
    return page.unread || 0;
  },
  async render(main, ctx) {
    let data;
    try {
      data = await api('GET', NOTICES_PATH, { query: { limit: 50 } });
    } catch (e) {
      if (e instanceof ApiError && e.status === 404 && (e.code === 'not_found' || e.code === 'http_404')) {
        clear(main, inboxNav(ctx, 'notices'), await receiptsFallback());
        return null;
      }
      throw e;
    }
    const items = data.items || [];
    const live = await liveState(items);
    clear(main,
      inboxNav(ctx, 'notices'),
      items.length ? [
        h('p', { class: 'small muted', id: 'unread' }, data.unread ? `${data.unread} 条未读，查看后即标为已读` : '全部已读'),
        h('ul', { class: 'list', id: 'notices' }, items.map((n) => noticeItem(n, live, ctx))),
      ] : h('p', { class: 'empty' }, '暂无消息。'));
    if (data.unread) {
      // Shown now, so read (shared by an enterprise's agents); this visit still marks them 新.
      api('POST', `${NOTICES_PATH}/read`, { body: {} }).then(() => ctx.refreshBadges()).catch(() => {});
    }
    return null;
  },
};
