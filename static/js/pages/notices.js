// 消息: what I was told — redemption receipts now; policy offers (免申即享) and legal documents (法律文书送达)
// as those capabilities land. A notice's `kind` picks its renderer and its buttons from KINDS below.

import { api, ApiError } from '../api.js';
import { clear, dialog, errorBox, fmtDateTime, h, reasonText, statusPill, toast } from '../ui.js';

const NOTICES_PATH = '/me/notices';

/**
 * One entry per notice kind: a label, the facts to show from `notice.body`, and the actions (buttons).
 * An action is {label, primary?, confirm?, run(notice) -> Promise}; after it runs the list reloads.
 *
 * HOOKS: `offer` and `legal_document` are written against the shapes announced for the offers and legal-
 * document capabilities (POST /api/v1/offers/{id}/confirm|receipt; open and acknowledge a document). Their
 * notice bodies are assumed to carry `offer_id` / `document_id` and a `state`; adjust here when the APIs land.
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
  offer: {
    label: '免申即享',
    facts: (b) => [['政策', b.policy || b.title], ['金额', b.amount], ['状态', b.state_name || b.state]],
    actions: (n) => {
      const b = n.body || {};
      const out = [];
      if (['offered', 'pending', 'notified'].includes(b.state)) {
        out.push({
          label: '一键确认享受', primary: true, confirm: '确认享受该政策？确认后将进入拨付流程。',
          run: () => api('POST', `/offers/${b.offer_id}/confirm`, { body: {} }),
        });
      }
      if (['paid', 'disbursed'].includes(b.state)) {
        out.push({
          label: '确认已到账', primary: true, confirm: '确认该笔资金已到账？',
          run: () => api('POST', `/offers/${b.offer_id}/receipt`, { body: {} }),
        });
      }
      return out;
    },
  },
  legal_document: {
    label: '法律文书送达',
    facts: (b) => [['文书', b.document_title || b.title], ['送达机关', b.court || b.issuer], ['状态', b.state_name || b.state]],
    actions: (n) => {
      const b = n.body || {};
      const out = [];
      if (b.open_url) out.push({ label: '打开文书', run: async () => { window.open(b.open_url, '_blank', 'noopener'); } });
      if (b.document_id && !b.acknowledged_at) {
        out.push({
          label: '确认已阅读', primary: true, confirm: '确认已阅读并知悉该文书内容？',
          run: () => api('POST', `/documents/${b.document_id}/acknowledge`, { body: {} }),
        });
      }
      return out;
    },
  },
};

const UNKNOWN = { label: '通知', facts: () => [], actions: () => [] };

function noticeItem(notice, reload) {
  const kind = KINDS[notice.kind] || UNKNOWN;
  const body = notice.body || {};
  const facts = kind.facts(body).filter(([, v]) => v !== undefined && v !== null && v !== '');
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
    facts.length ? h('dl', { class: 'facts small' }, facts.map(([k, v]) => [h('dt', {}, k), h('dd', {}, String(v))])) : null,
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
    clear(main, items.length ? h('ul', { class: 'list', id: 'notices' }, items.map((n) => noticeItem(n, reload)))
      : h('p', { class: 'empty' }, '暂无消息。'));
    return null;
  },
};
