// Sign in: WeChat's code where the page runs inside WeChat, the demo accounts in demo mode, a password otherwise.

import { api, ApiError } from '../api.js';
import { clear, colourPill, errorBox, field, h, ROLE_WORDS } from '../ui.js';

async function wechatCodeFromUrl() {
  // The mini-program's web-view (or WeChat's OAuth redirect) hands the page a one-time code in ?code=.
  const params = new URLSearchParams(location.search);
  const code = params.get('code');
  if (!code) return null;
  params.delete('code');
  params.delete('state');
  const query = params.toString();
  history.replaceState(null, '', location.pathname + (query ? '?' + query : '') + location.hash);
  return code;
}

function wxLogin() {
  // Inside the mini-program runtime wx.login() gives the code; a plain browser has no `wx`.
  return new Promise((resolve, reject) => {
    window.wx.login({ success: (r) => resolve(r.code), fail: () => reject(new Error('微信登录失败')) });
  });
}

export default {
  name: 'login',
  title: '登录',
  async render(main, ctx) {
    const problem = h('div');
    const show = (e) => clear(problem, errorBox(e));

    const code = await wechatCodeFromUrl();
    if (code) {
      try {
        const session = await api('POST', '/session', { body: { code } });
        await ctx.signedIn(session.token);
        return null;
      } catch (e) {
        show(e);
      }
    }

    const sections = [
      h('section', { class: 'card' },
        h('h2', {}, '信码'),
        h('p', {}, '出示信用码，享受守信激励；工作人员扫码核销。')),
      problem,
    ];

    if (window.wx && typeof window.wx.login === 'function') {
      sections.push(h('button', {
        type: 'button', class: 'weui-btn weui-btn_primary btn-block',
        onclick: async () => {
          try {
            const session = await api('POST', '/session', { body: { code: await wxLogin() } });
            await ctx.signedIn(session.token);
          } catch (e) {
            show(e);
          }
        },
      }, '微信一键登录'));
    }

    let demo = null;
    try {
      demo = await api('GET', '/session/demo');
    } catch (e) {
      if (!(e instanceof ApiError && e.status === 404)) show(e);  // 404: not demo mode
    }
    if (demo && demo.length) {
      sections.push(h('section', { 'aria-labelledby': 'demo-title' },
        h('h2', { id: 'demo-title' }, '演示账号'),
        h('p', { class: 'muted' }, '演示模式：选择一个账号直接登录，无需密码。'),
        h('ul', { class: 'demo-list' }, demo.map((a) => h('li', {},
          h('button', {
            type: 'button', class: 'demo-account', dataset: { account: a.account },
            onclick: async () => {
              try {
                const session = await api('POST', '/session/demo', { body: { account: a.account } });
                await ctx.signedIn(session.token);
              } catch (e) {
                show(e);
              }
            },
          },
          h('span', { class: 'spread' },
            h('span', { class: 'login' }, a.account),
            a.colour ? colourPill(a.colour) : h('span', { class: 'pill pill-info' },
              a.roles.map((r) => ROLE_WORDS[r] || r).join('、'))),
          h('span', { class: 'desc' }, a.description || '')))))));
    }

    const form = h('form', {
      class: 'card', 'aria-labelledby': 'password-title',
      onsubmit: async (e) => {
        e.preventDefault();
        try {
          const session = await api('POST', '/session', {
            body: { login: form.elements.login.value.trim(), password: form.elements.password.value },
          });
          await ctx.signedIn(session.token);
        } catch (err) {
          show(err);
        }
      },
    },
    h('h2', { id: 'password-title' }, '账号密码登录'),
    field('账号', h('input', { name: 'login', autocomplete: 'username', required: true, maxlength: 64 })),
    field('密码', h('input', { name: 'password', type: 'password', autocomplete: 'current-password', required: true })),
    h('button', { type: 'submit', class: 'weui-btn weui-btn_primary btn-block' }, '登录'));
    sections.push(form);

    clear(main, sections);
    return null;
  },
};
