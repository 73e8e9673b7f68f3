// 我的: the account, its roles, my credit file (colour and records), a new code after a lost phone, sign out.

import { api } from '../api.js';
import { holderChoices } from '../holders.js';
import { clear, colourPill, dialog, errorBox, h, KIND_WORDS, RISK_WORDS, ROLE_WORDS, statusPill, toast } from '../ui.js';

function recordItem(r) {
  const state = r.repaired_on ? `已信用修复（${r.repaired_on}）`
    : r.suspended_on ? `暂缓惩戒（${r.suspended_on} 起${r.suspended_until ? '至 ' + r.suspended_until : ''}）` : null;
  return h('li', {},
    h('div', { class: 'spread' }, h('span', { class: 'title' }, r.category_name),
      h('span', { class: `pill ${r.kind === 'honour' ? 'pill-green' : 'pill-red'}` }, r.kind === 'honour' ? '✓ 荣誉信息' : '✕ 不良信用记录')),
    h('p', { class: 'small muted' }, `${r.source} · ${r.effective_on} 起${r.published_until ? '，公示至 ' + r.published_until : ''}`),
    state ? h('p', { class: 'small' }, state) : null,
    r.repair_reason ? h('p', { class: 'small' }, r.repair_reason) : null);
}

function creditFile(s) {
  return h('section', { class: 'card credit-file' },
    h('div', { class: 'spread' }, h('h3', {}, s.kind === 'person' ? '我的信用档案' : '企业信用档案'), colourPill(s.colour)),
    h('dl', { class: 'facts small' },
      h('dt', {}, '名称'), h('dd', {}, `${s.name}（${KIND_WORDS[s.kind] || ''}）`),
      h('dt', {}, s.kind === 'person' ? '证件号' : '信用代码'), h('dd', {}, s.identifier),
      s.grade ? [h('dt', {}, '信用等级'), h('dd', {}, `${s.grade}级`)] : null,
      s.risk_level ? [h('dt', {}, '风险等级'), h('dd', {}, RISK_WORDS[s.risk_level] || s.risk_level)] : null),
    s.records.length ? h('ul', { class: 'list' }, s.records.map(recordItem)) : h('p', { class: 'empty' }, '暂无信用记录。'));
}

export default {
  name: 'me',
  title: '我的',
  tab: '我的',
  async render(main, ctx) {
    const me = ctx.me;
    const problem = h('div');
    const file = h('div');
    const sections = [
      problem,
      h('section', { class: 'card' },
        h('div', { class: 'spread' }, h('strong', {}, me.login), statusPill(me.status)),
        h('p', { class: 'small muted' }, me.roles.map((r) => ROLE_WORDS[r.role] || r.role).join('、') || '无角色'),
        me.status_reason ? h('p', { class: 'small' }, '审核意见：', me.status_reason) : null,
        me.status === 'pending' ? h('p', { class: 'info' }, '账号正在审核中，审核通过后即可使用全部功能。') : null),
      file,
    ];
    const holders = holderChoices(me);
    if (holders.length) {
      sections.push(h('section', { class: 'card' },
        h('h3', {}, '更换信用码'),
        h('p', { class: 'small' }, '手机丢失或信用码被他人拍下时使用：已发出的信用码（包括离线码）立即作废。'),
        holders.map((holder) => h('button', {
          type: 'button', class: 'weui-btn weui-btn_warn btn-block',
          onclick: async () => {
            if (!(await dialog({ title: '作废已发出的信用码？', message: '作废后请重新打开“信用码”页面。', confirm: '作废', danger: true }))) return;
            try {
              await api('POST', '/me/code/rotate', { query: { subject_id: holder.id }, body: {} });
              sessionStorage.removeItem('xinma.batch.' + (holder.id || 'own'));
              toast('已更换，旧信用码作废');
            } catch (e) {
              clear(problem, errorBox(e));
            }
          },
        }, holders.length > 1 ? `作废并更换：${holder.label}` : '作废并更换信用码'))));
    }
    sections.push(h('button', { type: 'button', class: 'weui-btn weui-btn_default btn-block', onclick: () => ctx.signOut() }, '退出登录'));
    clear(main, sections);

    if (me.status === 'approved') {
      const files = [];
      for (const holder of holders) {
        try {
          files.push(creditFile(await api('GET', holder.id === null ? '/me/subject' : `/subjects/${holder.id}`)));
        } catch (e) {
          files.push(errorBox(e));
        }
      }
      clear(file, files);
    }
    return null;
  },
};
