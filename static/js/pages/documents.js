// 法律文书: documents served on my enterprises (#/documents), and one document (#/documents/7): its details, the
// file shown in the page (a PDF in a frame, an image as an image), 签收 with one click, and the evidence with the
// print-ready receipt (送达回证). The issuer (a court) sees the same page without 签收, with delivery per address.
//
// Every look is evidence (docs/legal-service.md): opening this page records "opened", showing the file
// "downloaded", the evidence button "evidence_exported" — so the evidence is fetched only when asked for.

import { api, apiFile } from '../api.js';
import { inboxNav } from '../inbox.js';
import {
  CHANNEL_WORDS, clear, DOCUMENT_STATUS_WORDS, documentPill, errorBox, fmtDate, fmtDateTime, h, toast,
} from '../ui.js';

const BASIS_WORDS = {
  delivered: '文书到达受送达人确认的电子送达地址', opened: '受送达人查阅文书', acknowledged: '受送达人签收文书',
};

function isIssuer(who) {
  return (who.orgs || []).some((o) => o.kind === 'department');
}

/** Save a blob under a name (the receipt, the document): an <a download> clicked. */
function saveBlob(blob, name) {
  const url = URL.createObjectURL(blob);
  const a = h('a', { href: url, download: name, hidden: true });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60000);
}

async function sha256Hex(blob) {
  if (!(window.crypto && crypto.subtle)) return null;  // WebCrypto needs a secure context (HTTPS, 127.0.0.1)
  const digest = await crypto.subtle.digest('SHA-256', await blob.arrayBuffer());
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

/** The file inside the page, checked against the SHA-256 the service recorded. Returns the object URL (revoked
 * by the page's cleanup). */
async function showContent(box, doc) {
  clear(box, h('p', { class: 'empty', role: 'status' }, '正在打开文书……'));
  const file = await apiFile(`/documents/${doc.id}/content`);
  const url = URL.createObjectURL(file.blob);
  const digest = await sha256Hex(file.blob);
  const name = `${doc.case_number}-${doc.title}.${file.type === 'application/pdf' ? 'pdf' : file.type === 'image/png' ? 'png' : 'jpg'}`;
  const viewer = file.type === 'application/pdf'
    ? h('iframe', { class: 'doc-frame', src: url, title: `文书内容：${doc.title}`, dataset: { sha256: digest || '' } })
    : h('img', { class: 'doc-image', src: url, alt: `文书内容：${doc.title}`, dataset: { sha256: digest || '' } });
  const check = digest === null ? h('p', { class: 'small muted' }, `送达记录中的文件 SHA-256：${doc.content_sha256}`)
    : digest === doc.content_sha256 ? h('p', { class: 'small', id: 'file-check' }, '✓ 文件与送达时一致（SHA-256 校验）')
      : h('p', { class: 'error', id: 'file-check' }, '✕ 文件与送达记录不一致，请联系送达机关');
  clear(box, viewer, check,
    h('p', { class: 'small muted' }, '文书显示不全时：',
      h('a', { href: url, target: '_blank', rel: 'noopener' }, '在新页面打开'), ' 或 ',
      h('a', { href: url, download: name }, '保存到手机'), '。'));
  return url;
}

function evidenceView(doc, ev) {
  const r = ev.receipt;
  const v = ev.verification;
  return h('div', { class: 'evidence', id: 'evidence' },
    h('p', { class: v.ok ? 'info' : 'error' }, v.ok ? '✓ 证据链校验通过：各条证据的哈希、承诺记录与文件 SHA-256 一致'
      : `✕ 证据链校验未通过：${v.broken || '承诺记录或文件与证据不一致'}`),
    h('dl', { class: 'facts small' },
      h('dt', {}, '送达完成'), h('dd', { id: 'deemed' }, r.deemed_served_at
        ? `${fmtDateTime(r.deemed_served_at)}（依据：${BASIS_WORDS[r.deemed_served_basis] || r.deemed_served_basis}）` : '尚未完成'),
      h('dt', {}, '查阅'), h('dd', {}, r.opened_at ? fmtDateTime(r.opened_at) : '未查阅'),
      h('dt', {}, '签收'), h('dd', {}, r.acknowledged_at ? fmtDateTime(r.acknowledged_at) : '未签收'),
      h('dt', {}, '证据条数'), h('dd', {}, `${ev.entries.length} 条，链头序号 ${ev.head ? ev.head.seq : '—'}`)),
    h('p', { class: 'small muted' }, r.rule),
    h('button', {
      type: 'button', class: 'weui-btn weui-btn_default btn-block', dataset: { action: 'receipt' },
      onclick: async (e) => {
        const button = e.currentTarget;
        button.disabled = true;
        try {
          const file = await apiFile(`/documents/${doc.id}/evidence`, { query: { format: 'html' } });
          saveBlob(new Blob([file.blob], { type: 'text/html' }), `送达回证-${doc.case_number}.html`);
          toast('送达回证已下载，可用浏览器打印或另存为 PDF');
        } catch (err) {
          button.after(errorBox(err));
        } finally {
          button.disabled = false;
        }
      },
    }, '下载送达回证（可打印）'));
}

function documentCard(doc, { onAcknowledge, problem }) {
  const recipient = doc.role === 'recipient';
  const deadline = fmtDate(doc.deadline_at);
  return h('section', { class: 'card document', dataset: { document: doc.id, role: doc.role || '' } },
    h('div', { class: 'spread' }, h('h2', { class: 'offer-title' }, doc.title), documentPill(doc)),
    h('dl', { class: 'facts' },
      h('dt', {}, '案号'), h('dd', {}, doc.case_number),
      h('dt', {}, '送达机关'), h('dd', {}, doc.issuer.name),
      h('dt', {}, '受送达人'), h('dd', {}, `${doc.subject.name}（${doc.subject.identifier}）`),
      h('dt', {}, '送达时间'), h('dd', {}, fmtDateTime(doc.served_at)),
      h('dt', {}, '查阅期限'), h('dd', {}, `${deadline} 前`),
      h('dt', {}, '查阅'), h('dd', {}, doc.opened_at ? fmtDateTime(doc.opened_at) : '未查阅'),
      h('dt', {}, '签收'), h('dd', { id: 'acknowledged' }, doc.acknowledged_at ? `✓ 已签收 ${fmtDateTime(doc.acknowledged_at)}` : '未签收'),
      h('dt', {}, '履约情况'), h('dd', {}, DOCUMENT_STATUS_WORDS[doc.status] || doc.status)),
    recipient && !doc.acknowledged_at ? h('p', { class: 'notice' },
      `请于 ${deadline} 前查阅并签收。按承诺及时接收将记入企业守信记录，逾期未接收将记入失信记录。`) : null,
    problem,
    recipient && !doc.acknowledged_at ? h('button', {
      type: 'button', class: 'weui-btn weui-btn_primary btn-block', dataset: { action: 'acknowledge' },
      onclick: onAcknowledge,
    }, '签收') : null,
    doc.channels && doc.channels.length ? h('details', { class: 'channels', open: doc.role === 'issuer' },
      h('summary', {}, `送达地址（${doc.channels.length}）`),
      h('ul', { class: 'plain small' }, doc.channels.map((c) => h('li', {},
        `${CHANNEL_WORDS[c.channel] || c.channel} ${c.address}：`,
        c.delivered_at ? `已到达 ${fmtDateTime(c.delivered_at)}` : c.failed_at ? `投递失败 ${fmtDateTime(c.failed_at)}`
          : c.sent_at ? `已发出 ${fmtDateTime(c.sent_at)}` : '待发出')))) : null);
}

async function one(main, ctx, id) {
  const problem = h('div', { class: 'problem' });
  const card = h('div');
  const content = h('div', { class: 'doc-content' });
  const evidence = h('div');
  let doc = await api('GET', `/documents/${id}`);  // the recipient's look: "opened"
  const draw = () => clear(card, documentCard(doc, {
    problem,
    onAcknowledge: async (e) => {
      const button = e.currentTarget;
      button.disabled = true;
      try {
        doc = await api('POST', `/documents/${id}/acknowledge`, { body: {} });
        toast('已签收，签收记录已作为送达证据保存');
        clear(problem);
        draw();
      } catch (err) {
        button.disabled = false;
        clear(problem, errorBox(err));
      }
    },
  }));
  draw();
  clear(main,
    doc.role === 'recipient' ? inboxNav(ctx, 'documents') : null,
    card,
    h('h3', {}, '文书内容'), content,
    h('h3', {}, '送达证据'),
    h('div', {}, h('button', {
      type: 'button', class: 'weui-btn weui-btn_default btn-block', dataset: { action: 'evidence' },
      onclick: async (e) => {
        const button = e.currentTarget;
        button.disabled = true;
        try {
          clear(evidence, evidenceView(doc, await api('GET', `/documents/${id}/evidence`)));
          button.remove();
        } catch (err) {
          button.disabled = false;
          clear(evidence, errorBox(err));
        }
      },
    }, '查看送达证据与送达回证'), evidence),
    h('a', { href: doc.role === 'recipient' ? '#/documents' : '#/serve', class: 'back' }, '← 全部文书'));
  let url = null;
  try {
    url = await showContent(content, doc);
  } catch (err) {
    clear(content, errorBox(err));
  }
  return () => { if (url) URL.revokeObjectURL(url); };
}

async function list(main, ctx) {
  const page = await api('GET', '/documents', { query: { limit: 100 } });
  const mine = page.items.filter((d) => d.role === 'recipient');
  clear(main, inboxNav(ctx, 'documents'),
    mine.length ? h('ul', { class: 'list', id: 'documents' }, mine.map((d) => h('li', { dataset: { document: d.id } },
      h('div', { class: 'spread' }, h('a', { class: 'title', href: `#/documents/${d.id}` }, d.title), documentPill(d)),
      h('p', { class: 'small muted' }, `${d.case_number} · ${d.issuer.name}`),
      h('p', { class: 'small muted' }, `送达 ${fmtDateTime(d.served_at)} · 请于 ${fmtDate(d.deadline_at)} 前查阅并签收`))))
      : h('p', { class: 'empty' }, '暂无法律文书。'),
    ctx.hasPage('service-address') ? h('a', { class: 'weui-btn weui-btn_default btn-block', href: '#/service-address' },
      '电子送达地址承诺') : null);
}

export default {
  name: 'documents',
  title: '法律文书',
  hidden: true,  // reached from 消息 (its switch, a notice's link, a push's page) or the issuer's 送达 page
  parent: (who) => (isIssuer(who) && !(who.me.roles || []).some((r) => r.role === 'enterprise_agent') ? 'serve' : 'notices'),
  roles: ['enterprise_agent', 'citizen', 'org_admin', 'clerk'],
  async render(main, ctx) {
    const id = Number(ctx.params[0]);
    if (ctx.params[0] && Number.isInteger(id) && id > 0) return one(main, ctx, id);
    await list(main, ctx);
    return null;
  },
};
