// 电子送达地址承诺 (enterprise agents): the address in force, committing or changing it after reading the exact
// consent text the server sends (its SHA-256 goes back with the commitment), revoking it, and the history.

import { api } from '../api.js';
import {
  CHANNEL_WORDS, clear, COMMITMENT_STATUS_WORDS, dialog, errorBox, field, fmtDateTime, formValues, h, toast,
} from '../ui.js';

function lines(text) {
  return (text || '').split(/[\n,，;；\s]+/).map((s) => s.trim()).filter(Boolean);
}

function enterpriseIds(me) {
  return [...new Set(me.roles.filter((r) => r.role === 'enterprise_agent' && r.subject_id).map((r) => r.subject_id))];
}

function addressList(c) {
  return h('ul', { class: 'plain', id: 'addresses' }, c.addresses.map((a) => h('li', { dataset: { channel: a.channel } },
    // A WeChat address reads 微信：<login> already.
    a.channel === 'wechat' ? a.address : [h('strong', {}, CHANNEL_WORDS[a.channel] || a.channel), '：', a.address])));
}

function current(c) {
  if (!c) {
    return h('section', { class: 'card', id: 'commitment', dataset: { status: 'none' } },
      h('h3', {}, '当前承诺'),
      h('p', { class: 'notice' }, '本企业尚未承诺电子送达地址：法院和行政机关不能通过信码向本企业电子送达法律文书。'));
  }
  return h('section', { class: 'card', id: 'commitment', dataset: { status: c.status, version: c.version } },
    h('div', { class: 'spread' }, h('h3', {}, `当前承诺 · 第 ${c.version} 版`),
      h('span', { class: 'pill pill-green' }, `✓ ${COMMITMENT_STATUS_WORDS[c.status] || c.status}`)),
    h('p', { class: 'small muted' }, `确认于 ${fmtDateTime(c.consented_at)}，承诺书第 ${c.consent_version} 版`),
    addressList(c));
}

function commitForm(me, subjectId, data, onDone) {
  const c = data.commitment;
  const problem = h('div');
  // WeChat addresses are agents' accounts: me, and whoever the commitment in force names (kept unless unticked).
  const wechat = new Map([[me.id, `我的微信（${me.login}）`]]);
  for (const a of (c ? c.addresses : [])) {
    if (a.channel === 'wechat' && a.account_id && !wechat.has(a.account_id)) wechat.set(a.account_id, a.address);
  }
  const chosen = new Set(c ? c.addresses.filter((a) => a.channel === 'wechat').map((a) => a.account_id) : [me.id]);
  const form = h('form', {
    class: 'card', id: 'commit-form',
    onsubmit: async (e) => {
      e.preventDefault();
      const v = formValues(form);
      if (!form.querySelector('input[name=agree]').checked) {
        clear(problem, errorBox({ message: '请先阅读并勾选同意承诺书' }));
        return;
      }
      try {
        const after = await api('PUT', `/enterprises/${subjectId}/service-address`, {
          body: {
            wechat_account_ids: (v.wechat || []).map(Number), emails: lines(v.emails), mobiles: lines(v.mobiles),
            consent_version: data.consent.version, consent_sha256: data.consent.sha256,
          },
        });
        toast(c ? '已变更送达地址' : '已承诺送达地址');
        onDone(after);
      } catch (err) {
        clear(problem, errorBox(err));
        problem.scrollIntoView({ block: 'center' });
      }
    },
  },
  h('h3', {}, c ? '变更送达地址' : '承诺送达地址'),
  h('fieldset', { class: 'field' }, h('legend', {}, '经办人微信（通过信码小程序接收）'),
    [...wechat.entries()].map(([id, label]) => h('label', { class: 'check' },
      h('input', { type: 'checkbox', name: 'wechat', value: String(id), checked: chosen.has(id) }), label))),
  field('电子邮箱（每行一个）', h('textarea', { name: 'emails', rows: 2, autocomplete: 'email', inputmode: 'email' })),
  field('手机号码（每行一个）', h('textarea', { name: 'mobiles', rows: 2, autocomplete: 'tel', inputmode: 'tel' }),
    c ? '已承诺的邮箱和手机号只保存加密后的内容，这里只能显示部分；变更时请把要保留的地址重新填写一遍。' : null),
  h('h3', {}, `送达地址确认书（第 ${data.consent.version} 版）`),
  h('blockquote', { class: 'consent', id: 'consent-text' }, data.consent.text),
  h('label', { class: 'check' }, h('input', { type: 'checkbox', name: 'agree', value: 'yes' }), '我已阅读并同意以上确认书'),
  problem,
  h('button', { type: 'submit', class: 'weui-btn weui-btn_primary btn-block' }, c ? '确认变更' : '确认承诺'));
  return form;
}

function historyList(items) {
  if (!items.length) return null;
  return h('details', { class: 'card', id: 'history' },
    h('summary', {}, `历史版本（${items.length}）`),
    h('ul', { class: 'list' }, items.map((c) => h('li', { dataset: { version: c.version } },
      h('div', { class: 'spread' }, h('strong', {}, `第 ${c.version} 版`),
        h('span', { class: `pill ${c.status === 'active' ? 'pill-green' : 'pill-grey'}` }, COMMITMENT_STATUS_WORDS[c.status] || c.status)),
      h('p', { class: 'small muted' }, `确认于 ${fmtDateTime(c.consented_at)}${c.ended_at ? `，${c.status === 'revoked' ? '撤回' : '变更'}于 ${fmtDateTime(c.ended_at)}` : ''}`),
      addressList(c)))));
}

async function show(box, me, subjectId) {
  const [data, history] = await Promise.all([
    api('GET', `/enterprises/${subjectId}/service-address`),
    api('GET', `/enterprises/${subjectId}/service-address/history`),
  ]);
  const reload = () => show(box, me, subjectId).catch((e) => clear(box, errorBox(e)));
  const problem = h('div');
  clear(box,
    current(data.commitment),
    commitForm(me, subjectId, data, reload),
    data.commitment ? h('button', {
      type: 'button', class: 'weui-btn weui-btn_warn btn-block', dataset: { action: 'revoke' },
      onclick: async () => {
        const ok = await dialog({
          title: '撤回送达地址承诺？', danger: true, confirm: '撤回',
          message: '撤回后法院和行政机关不能再向本企业电子送达文书；撤回前已送达的文书不受影响。',
        });
        if (!ok) return;
        try {
          await api('DELETE', `/enterprises/${subjectId}/service-address`);
          toast('已撤回承诺');
          reload();
        } catch (err) {
          clear(problem, errorBox(err));
        }
      },
    }, '撤回承诺') : null,
    problem,
    historyList(history.items));
}

export default {
  name: 'service-address',
  title: '电子送达地址',
  hidden: true,  // from 我的 and the documents list
  parent: 'me',
  roles: ['enterprise_agent'],
  async render(main, ctx) {
    const ids = enterpriseIds(ctx.me);
    const box = h('div', { id: 'service-address' });
    const names = ids.length > 1 ? await Promise.all(ids.map((id) => api('GET', `/subjects/${id}`).then((s) => s.name).catch(() => `企业 ${id}`))) : [];
    const picker = ids.length > 1 ? field('企业', h('select', {
      onchange: (e) => show(box, ctx.me, Number(e.target.value)).catch((err) => clear(box, errorBox(err))),
    }, ids.map((id, i) => h('option', { value: String(id) }, names[i])))) : null;
    clear(main,
      h('p', { class: 'small' }, '承诺后，法院和行政机关可以通过信码向以下地址电子送达法律文书；文书到达任一地址，或经办人查阅、签收文书之日（以在先者为准）视为送达。'),
      picker, box);
    if (!ids.length) {
      clear(box, h('p', { class: 'empty' }, '您不是任何企业的经办人。'));
      return null;
    }
    await show(box, ctx.me, ids[0]);
    return null;
  },
};
