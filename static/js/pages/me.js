// 我的: the account, its roles, my credit file (colour and records), an enterprise agent's offers, documents and
// service address, binding my WeChat (a one-time code sent in the official account's chat), my e-mail and mobile
// for notices (with consent), a new code after a lost phone, sign out.

import { api } from '../api.js';
import { holderChoices } from '../holders.js';
import {
  clear, colourPill, dialog, errorBox, field, fmtDateTime, fmtTime, h, KIND_WORDS, RISK_WORDS, ROLE_WORDS, statusPill,
  toast,
} from '../ui.js';

const CONTACT_WORDS = { email: '电子邮箱', mobile: '手机号码' };

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

/** 绑定微信: a code to send as 绑定 <code> in the official account's chat (handlers/wechat_users.py). */
function wechatBinding() {
  const out = h('div', { id: 'binding', 'aria-live': 'polite' });
  const problem = h('div');
  const button = h('button', {
    type: 'button', class: 'weui-btn weui-btn_primary btn-block', dataset: { action: 'binding-code' },
    onclick: async () => {
      button.disabled = true;
      try {
        const r = await api('POST', '/me/wechat-binding-code', { body: {} });
        clear(problem);
        clear(out,
          h('p', { class: 'binding-code', id: 'binding-code', 'aria-label': `绑定码 ${r.code.split('').join(' ')}` }, r.code),
          h('p', { id: 'binding-message' }, r.message),
          h('ol', { class: 'small steps-plain' },
            h('li', {}, '在微信中打开“信码”公众号；'),
            h('li', {}, `在聊天框发送：绑定 ${r.code}`),
            h('li', {}, '收到“绑定成功”的回复即完成。')),
          h('p', { class: 'small muted' }, `${fmtTime(r.expires_at)} 前有效，只能使用一次；重新获取后此码作废。`));
        button.textContent = '重新获取绑定码';
      } catch (e) {
        clear(problem, errorBox(e));
      } finally {
        button.disabled = false;
      }
    },
  }, '绑定微信');
  return h('section', { class: 'card', id: 'wechat-binding' },
    h('h3', {}, '绑定微信'),
    h('p', { class: 'small' }, '绑定后，信码公众号可以向您的微信推送核销回执、政策兑现和法律文书送达通知，并可在聊天中出示信用码。'),
    problem, button, out);
}

/** 联系方式: e-mail and mobile for notices, each given with consent to the exact text the server shows. */
async function contactsCard() {
  const box = h('section', { class: 'card', id: 'contacts' });
  const load = async () => {
    const data = await api('GET', '/me/contacts');
    const problem = h('div');
    const consent = h('blockquote', { class: 'consent small', id: 'contact-consent' }, data.consent.email);
    const kind = h('select', { name: 'kind', onchange: (e) => { consent.textContent = data.consent[e.target.value]; } },
      Object.entries(CONTACT_WORDS).map(([k, w]) => h('option', { value: k }, w)));
    const form = h('form', {
      id: 'contact-form',
      onsubmit: async (e) => {
        e.preventDefault();
        const agreed = form.querySelector('input[name=consent]').checked;
        try {
          await api('POST', '/me/contacts', { body: { kind: kind.value, address: form.address.value.trim(), consent: agreed } });
          toast('已保存');
          await load();
        } catch (err) {
          clear(problem, errorBox(err));
        }
      },
    },
    field('类型', kind),
    field('地址', h('input', { name: 'address', required: true, maxlength: 254, autocomplete: 'off' }), '电子邮箱，或 11 位手机号码'),
    consent,
    h('label', { class: 'check' }, h('input', { type: 'checkbox', name: 'consent', value: 'yes' }), '我同意以上授权'),
    problem,
    h('button', { type: 'submit', class: 'weui-btn weui-btn_default btn-block' }, '保存'));
    clear(box,
      h('h3', {}, '联系方式'),
      h('p', { class: 'small' }, '通知也可以发到您的邮箱或手机（同一类型只保留一个，再次填写即替换）。'),
      data.items.length ? h('ul', { class: 'plain', id: 'contact-list' }, data.items.map((c) => h('li', { class: 'recent-item', dataset: { kind: c.kind } },
        h('span', {}, h('strong', {}, CONTACT_WORDS[c.kind] || c.kind), ' ', c.address,
          h('span', { class: 'small muted' }, ` · ${fmtDateTime(c.consent_at)} 同意`)),
        h('button', {
          type: 'button', class: 'weui-btn weui-btn_warn', 'aria-label': `删除${CONTACT_WORDS[c.kind] || ''} ${c.address}`,
          onclick: async () => {
            if (!(await dialog({ title: '删除并撤回同意？', message: '删除后不再向该地址发送通知。', confirm: '删除', danger: true }))) return;
            try {
              await api('DELETE', `/me/contacts/${c.id}`);
              toast('已删除');
              await load();
            } catch (err) {
              clear(problem, errorBox(err));
            }
          },
        }, '删除'))))
        : h('p', { class: 'small muted' }, '尚未填写。'),
      form);
  };
  try {
    await load();
  } catch (e) {
    clear(box, errorBox(e));
  }
  return box;
}

/** An enterprise agent's business: offers, documents, the service address. */
function enterpriseCard(ctx) {
  if (!ctx.roles(ctx.me).has('enterprise_agent')) return null;
  const links = [['offers', '政策兑现（免申即享）'], ['documents', '法律文书'], ['service-address', '电子送达地址承诺']]
    .filter(([name]) => ctx.hasPage(name));
  if (!links.length) return null;
  return h('section', { class: 'card', id: 'enterprise-links' },
    h('h3', {}, '企业事务'),
    links.map(([name, label]) => h('a', { class: 'weui-btn weui-btn_default btn-block', href: '#/' + name }, label)));
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
    if (me.status === 'approved') {
      sections.push(enterpriseCard(ctx), wechatBinding(), await contactsCard());
    }
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
