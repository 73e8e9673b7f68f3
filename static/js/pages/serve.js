// 文书送达 (issuers: members of a court or department): serve a document on an enterprise by its credit code, and
// follow what became of each one served (opened, acknowledged, the receipt) on its page #/documents/{id}.

import { api } from '../api.js';
import { clear, documentPill, errorBox, field, fmtDate, fmtDateTime, h, toast } from '../ui.js';

const ISSUER_KINDS = ['department'];  // handlers/documents.py ISSUER_KINDS
const ACCEPT = 'application/pdf,image/png,image/jpeg,.pdf,.png,.jpg,.jpeg';

export function issuerOrganisations(who) {
  const mine = new Set((who.me.roles || []).filter((r) => r.role === 'org_admin' || r.role === 'clerk').map((r) => r.organisation_id));
  return (who.orgs || []).filter((o) => mine.has(o.id) && ISSUER_KINDS.includes(o.kind));
}

/** The file input in the page's own words (the browser's native button speaks the browser's language). */
function filePicker() {
  const name = h('span', { class: 'file-name', id: 'file-name' }, '未选择文件');
  const input = h('input', {
    name: 'file', type: 'file', required: true, accept: ACCEPT, 'aria-describedby': 'file-name',
    onchange: () => { name.textContent = input.files.length ? input.files[0].name : '未选择文件'; },
  });
  return h('div', { class: 'field' }, h('span', { id: 'file-label' }, '文书文件'),
    h('label', { class: 'file-pick' }, input, h('span', { class: 'weui-btn weui-btn_default', 'aria-hidden': 'true' }, '选择文件'), name),
    h('small', { class: 'hint' }, 'PDF、PNG 或 JPEG'));
}

function uploadForm(orgs, onServed) {
  const problem = h('div');
  const form = h('form', {
    class: 'card', id: 'serve-form',
    onsubmit: async (e) => {
      e.preventDefault();
      const submit = form.querySelector('button[type=submit]');
      const data = new FormData(form);
      for (const [k, v] of [...data.entries()]) if (typeof v === 'string') data.set(k, v.trim());
      if (orgs.length < 2) data.delete('organisation_id');
      submit.disabled = true;
      clear(problem, h('p', { class: 'info', role: 'status' }, '正在送达……'));
      try {
        const doc = await api('POST', '/documents', { body: data, timeout: 120000 });
        toast('已送达');
        form.reset();
        form.querySelector('#file-name').textContent = '未选择文件';
        clear(problem);
        onServed(doc);
      } catch (err) {
        clear(problem, errorBox(err));
      } finally {
        submit.disabled = false;
      }
    },
  },
  h('h3', {}, '送达法律文书'),
  orgs.length > 1 ? field('送达机关', h('select', { name: 'organisation_id' }, orgs.map((o) => h('option', { value: String(o.id) }, o.name))))
    : h('p', { class: 'small muted' }, `以“${orgs[0].name}”的名义送达`),
  field('受送达人统一社会信用代码', h('input', {
    name: 'identifier', required: true, maxlength: 18, autocomplete: 'off', autocapitalize: 'characters',
    spellcheck: 'false', pattern: '[0-9A-Za-z]{18}',
  }), '18 位；受送达人须已承诺电子送达地址'),
  field('案号', h('input', { name: 'case_number', required: true, maxlength: 64, placeholder: '（2026）粤13民初1234号' })),
  field('文书名称', h('input', { name: 'title', required: true, maxlength: 200, placeholder: '民事裁定书' })),
  filePicker(),
  problem,
  h('button', { type: 'submit', class: 'weui-btn weui-btn_primary btn-block' }, '送达'));
  return form;
}

function servedList(items) {
  return items.length ? h('ul', { class: 'list', id: 'served' }, items.map((d) => h('li', { dataset: { document: d.id } },
    h('div', { class: 'spread' }, h('a', { class: 'title', href: `#/documents/${d.id}` }, d.title), documentPill(d)),
    h('p', { class: 'small muted' }, `${d.case_number} · ${d.subject.name}（${d.subject.identifier}）`),
    h('p', { class: 'small muted' }, `送达 ${fmtDateTime(d.served_at)} · 期限 ${fmtDate(d.deadline_at)} · `
      + (d.opened_at ? `已查阅 ${fmtDateTime(d.opened_at)}` : '未查阅')),
    h('a', { class: 'weui-btn weui-btn_default', href: `#/documents/${d.id}` }, '送达证据与回证'))))
    : h('p', { class: 'empty' }, '还没有送达过文书。');
}

export default {
  name: 'serve',
  title: '文书送达',
  tab: '送达',
  roles: ['org_admin', 'clerk'],
  when: (who) => issuerOrganisations(who).length > 0,
  async render(main, ctx) {
    const orgs = issuerOrganisations(ctx);
    const list = h('div');
    const load = async () => {
      const page = await api('GET', '/documents', { query: { limit: 100 } });
      clear(list, h('h3', {}, '已送达的文书'), servedList(page.items.filter((d) => d.role === 'issuer')));
    };
    clear(main, uploadForm(orgs, () => load().catch((e) => clear(list, errorBox(e)))), list);
    await load();
    return null;
  },
};
