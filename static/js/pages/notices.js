// 消息: what I was told — redemption receipts now; policy offers (免申即享) and legal documents (法律文书送达)
// as those capabilities land. A notice's `kind` picks its renderer and its buttons from KINDS below.

import { api, ApiError, sessionToken } from '../api.js';
import { clear, dialog, errorBox, fmtDateTime, h, reasonText, statusPill, toast } from '../ui.js';

const NOTICES_PATH = '/me/notices';

/**
 * How each kind of notice looks and what it lets me do: a label, facts from `notice.body` (when the body
 * has no `lines`, the text a push shows), and actions {label, primary?, confirm?, run(notice)}; the list
 * reloads after an action.
 *
 * HOOKS: the policy offers (offer_*) and legal documents (legal_document) are being built as this is
 * written. These entries follow the shapes in handlers/offers.py and handlers/documents.py today
 * (POST /offers/{id}/confirm|receipt; GET /documents/{id}, its /content, POST /documents/{id}/acknowledge);
 * adjust them here, and nowhere else, when those APIs settle. A notice whose `page` names a page of this
 * app (#/offers/{id}, #/documents/{id}) gets a 查看详情 link once that page exists.
 */
export const KINDS = {
  redemption: {
    label: '核销回执',
    facts: (b) => [['单位', b.organisation], ['时间', fmtDateTime(b.at)]],
    actions: () => [],
  },
  redemption_voided: {
    label: '撤销回执',
    facts: (b) => [['单位', b.organisation], ['撤销时间', fmtDateTime(b.at)], ['说明', '该次核销已撤销，名额已退回']],
    actions: () => [],
  },
  offer_: {  // every offer_* kind (offer_matched, offer_disbursed …)
    label: '免申即享',
    facts: (b) => [['政策', b.policy_title], ['金额', b.amount ? `${b.amount} 元` : null]],
    actions: (n) => {
      const id = n.body && n.body.offer_id;
      if (!id) return [];
      if (n.kind === 'offer_matched') {
        return [{
          label: '一键确认享受', primary: true, confirm: '确认享受该政策？确认后进入审核拨付，无需再提交材料。',
          run: () => api('POST', `/offers/${id}/confirm`, { body: {} }),
        }];
      }
      if (n.kind === 'offer_disbursed') {
        return [{
          label: '确认已到账', primary: true, confirm: '确认该笔资金已到账？',
          run: () => api('POST', `/offers/${id}/receipt`, { body: {} }),
        }];
      }
      return [];
    },
  },
  legal_document: {
    label: '法律文书送达',
    facts: (b) => [['案号', b.case_number], ['送达机关', b.issuer]],
    actions: (n) => {
      const id = n.body && n.body.document_id;
      if (!id) return [];
      return [
        { label: '查看文书', run: () => openDocument(id) },
        {
          label: '签收', primary: true, confirm: '确认已收到并查阅该法律文书？签收记录将作为送达证据保存。',
          run: () => api('POST', `/documents/${id}/acknowledge`, { body: {} }),
        },
      ];
    },
  },
};

/** Fetch the document with my token (a plain link could not send it) and show it in a new tab. */
async function openDocument(id) {
  await api('GET', `/documents/${id}`);  // the recipient's look: recorded as opened
  const response = await fetch(`/api/v1/documents/${id}/content`, {
    headers: { Authorization: 'Bearer ' + sessionToken() }, cache: 'no-store',
  });
  if (!response.ok) throw new ApiError(response.status, 'http_' + response.status, '文书暂时无法打开');
  window.open(URL.createObjectURL(await response.blob()), '_blank', 'noopener');
}

function kindOf(notice) {
  return KINDS[notice.kind] || (notice.kind.startsWith('offer_') ? KINDS.offer_ : UNKNOWN);
}

const UNKNOWN = { label: '通知', facts: () => [], actions: () => [] };

function noticeItem(notice, reload, ctx) {
  const kind = kindOf(notice);
  const body = notice.body || {};
  const facts = kind.facts(body).filter(([, v]) => v !== undefined && v !== null && v !== '');
  const target = (notice.page || '').match(/#\/([a-z]+)/);
  const link = target && ctx.hasPage(target[1]) ? h('a', { href: notice.page.slice(notice.page.indexOf('#')) }, '查看详情') : null;
  const problem = h('div');
  const buttons = kind.actions(notice).map((a) => h('button', {
    type: 'button', class: `weui-btn ${a.primary ? 'weui-btn_primary' : 'weui-btn_default'}`,
    dataset: { action: a.label },
    onclick: async (e) => {
      if (a.confirm && !(await dialog({ title: a.label, message: a.confirm, confirm: a.label }))) return;
      e.target.disabled = true;
      try {
        await a.run(notice);
        toast('已完成');
        reload();
      } catch (err) {
        e.target.disabled = false;
        clear(problem, errorBox(err));
      }
    },
  }, a.label));
  return h('li', { dataset: { kind: notice.kind, notice: notice.id } },
    h('div', { class: 'spread' },
      h('span', { class: 'title' }, notice.title),
      h('span', { class: `pill ${notice.read_at ? 'pill-grey' : 'pill-info'}` }, notice.read_at ? kind.label : `新 · ${kind.label}`)),
    h('p', { class: 'small muted' }, fmtDateTime(notice.created_at)),
    Array.isArray(body.lines) && body.lines.length ? h('div', { class: 'small' }, body.lines.map((line) => h('p', {}, line)))
      : facts.length ? h('dl', { class: 'facts small' }, facts.map(([k, v]) => [h('dt', {}, k), h('dd', {}, String(v))])) : null,
    link,
    problem,
    buttons.length ? h('div', { class: 'btn-row' }, buttons) : null);
}

/** Without the notices API (not deployed yet), the receipts still exist: they are my redemptions. */
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
  async render(main, ctx) {
    const reload = () => ctx.go('notices');
    let data;
    try {
      data = await api('GET', NOTICES_PATH, { query: { limit: 50 } });
    } catch (e) {
      if (e instanceof ApiError && e.status === 404 && (e.code === 'not_found' || e.code === 'http_404')) {
        clear(main, await receiptsFallback());
        return null;
      }
      clear(main, errorBox(e));
      return null;
    }
    const items = Array.isArray(data) ? data : data.items || [];
    clear(main, items.length ? h('ul', { class: 'list', id: 'notices' }, items.map((n) => noticeItem(n, reload, ctx)))
      : h('p', { class: 'empty' }, '暂无消息。'));
    if (data.unread) {
      // Seen now: read. (The list above still marks them 新 for this visit.)
      api('POST', `${NOTICES_PATH}/read`, { body: {} }).catch(() => {});
    }
    return null;
  },
};
