// 我的信用码: the QR drawn from the token, framed in its colour and named in words, a countdown to the next
// window, a fresh batch from the server every window, and with the network cut the batch keeps it rotating.

import { api, NetworkError } from '../api.js';
import { holderChoices, holderTabs } from '../holders.js';
import { drawQR } from '../qr.js';
import server from '../server.js';
import {
  clear, COLOUR_MARKS, COLOUR_MEANINGS, COLOUR_WORDS, errorBox, gradeText, h, KIND_WORDS,
} from '../ui.js';

const RETRY_MS = 10000;  // server unreachable while the phone says it is online: try again this often

function batchKey(subjectId) {
  return 'xinma.batch.' + (subjectId || 'own');
}

function loadBatch(subjectId) {
  try {
    return JSON.parse(sessionStorage.getItem(batchKey(subjectId)));
  } catch {
    return null;
  }
}

/** The server's answer, with times in ms and the phone's clock error measured against the server's. */
function fromResponse(data) {
  const tokens = data.tokens.map((t) => ({ token: t.token, from: Date.parse(t.valid_from), until: Date.parse(t.valid_until) }));
  // The server answered at about valid_until - refresh_after (refresh_after is rounded up to a second).
  const serverNow = tokens[0].until - data.refresh_after * 1000 + 500;
  const offset = serverNow - Date.now();
  return {
    tokens, colour: data.colour, kind: data.kind, grade: data.grade, name: data.name, window: data.window,
    offsetMs: Math.abs(offset) > 2000 ? offset : 0,  // trust the phone's clock unless it is clearly wrong
  };
}

function batchSize() {
  return Math.max(1, Math.floor(server.max_batch_seconds / server.code_window));
}

export default {
  name: 'code',
  title: '我的信用码',
  tab: '信用码',
  roles: ['citizen', 'enterprise_agent'],
  async render(main, ctx) {
    const choices = holderChoices(ctx.me);
    let subjectId = choices.length ? choices[0].id : null;
    let batch = loadBatch(subjectId);
    let shown = null;
    let fetching = false;
    let unreachable = false;  // the last fetch got no answer although the phone says it is online
    let retryAt = 0;  // after a failed fetch, not before this time
    let problem = null;
    let wakeLock = null;
    let big = null;

    const badge = h('span', { class: 'colour-badge' });
    const name = h('p', { class: 'code-name' });
    const meaning = h('p', { class: 'code-meaning' });
    const grade = h('p', { class: 'grade', hidden: true });
    const canvas = h('canvas', { role: 'img', 'aria-label': '信用码二维码' });
    const missing = h('p', { class: 'qr-missing', hidden: true });
    const frame = h('button', {
      type: 'button', class: 'qr-frame', 'aria-label': '放大信用码', onclick: () => enlarge(),
    }, canvas, missing);
    const seconds = h('strong', {}, '--');
    const countdown = h('p', { class: 'countdown', 'aria-hidden': 'true' }, seconds, ' 秒后自动刷新');
    const status = h('p', { class: 'small', role: 'status', 'aria-live': 'polite', dataset: { mode: 'loading' } });
    const errors = h('div');
    const card = h('section', { class: 'card code-card', 'aria-label': '我的信用码' },
      badge, name, meaning, grade, frame, countdown, status,
      h('p', { class: 'hint-bright' }, '出示时请调高屏幕亮度；点击二维码可放大。'));

    const switcher = holderTabs(choices, subjectId, (id) => {
      subjectId = id;
      batch = loadBatch(subjectId);
      shown = null;
      refresh();
    });

    clear(main, switcher, errors, card);

    const now = () => Date.now() + ((batch && batch.offsetMs) || 0);

    function current() {
      if (!batch || !batch.tokens.length) return null;
      const t = now();
      const found = batch.tokens.find((x) => x.from <= t && t < x.until);
      if (found) return found;
      return t < batch.tokens[0].from ? batch.tokens[0] : null;
    }

    function paint(token) {
      card.className = `card code-card code-${batch.colour}`;
      card.dataset.colour = batch.colour;
      badge.textContent = `${COLOUR_MARKS[batch.colour]} ${COLOUR_WORDS[batch.colour]}`;
      name.textContent = `${batch.name} · ${KIND_WORDS[batch.kind] || ''}`;
      meaning.textContent = COLOUR_MEANINGS[batch.colour];
      grade.hidden = !batch.grade;
      grade.textContent = batch.grade ? `公共信用等级：${gradeText(batch.grade)}` : '';
      if (token) {
        drawQR(canvas, token.token, { cssSize: 300 });
        canvas.dataset.token = token.token;
        canvas.dataset.validUntil = String(token.until);
        canvas.setAttribute('aria-label', `${COLOUR_WORDS[batch.colour]}二维码，${batch.name}`);
        if (big) drawQR(big.canvas, token.token, { cssSize: 560 });
      }
      canvas.hidden = !token;
      missing.hidden = !!token;
      countdown.hidden = !token;
      missing.textContent = token ? '' : '离线码已用完，请连接网络后刷新';
    }

    function setStatus(mode, text, className) {
      status.dataset.mode = mode;
      status.className = className;
      status.textContent = text;
    }

    function tick() {
      if (!batch) {
        if (!navigator.onLine || unreachable) setStatus('exhausted', '网络不可用，还没有离线码。请连接网络后刷新。', 'error');
        return;
      }
      const token = current();
      if ((token && token.token) !== shown) {
        shown = token && token.token;
        paint(token);
      }
      if (token) {
        const left = Math.max(0, Math.ceil((token.until - now()) / 1000));
        if (seconds.textContent !== String(left)) seconds.textContent = String(left);
        if (big) big.seconds.textContent = String(left);
      }
      const online = navigator.onLine && !unreachable;
      if (online) {
        setStatus('online', `动态码每 ${batch.window} 秒更新一次，截图无效。`, 'small muted');
      } else if (token) {
        const last = batch.tokens[batch.tokens.length - 1];
        const minutes = Math.max(1, Math.floor((last.until - now()) / 60000));
        setStatus('offline', `网络已断开：正在使用离线码，仍会自动更新，还可使用约 ${minutes} 分钟。`, 'notice');
      } else {
        setStatus('exhausted', '网络已断开，离线码已用完。请连接网络后刷新。', 'error');
      }
      // A new window began since the server's first token: fetch a fresh batch (and the colour now).
      const due = retryAt ? Date.now() >= retryAt : now() >= batch.tokens[0].until;
      if (navigator.onLine && !fetching && due) refresh();
    }

    async function refresh() {
      if (fetching) return;
      if (!navigator.onLine) {
        tick();
        return;
      }
      fetching = true;
      try {
        const data = await api('POST', '/codes', { query: { batch: batchSize(), subject_id: subjectId } });
        batch = fromResponse(data);
        sessionStorage.setItem(batchKey(subjectId), JSON.stringify(batch));
        unreachable = false;
        retryAt = 0;
        shown = null;
        if (problem) { problem = null; clear(errors); }
      } catch (e) {
        retryAt = Date.now() + RETRY_MS;
        if (e instanceof NetworkError) {
          unreachable = true;
        } else {
          problem = e;
          clear(errors, errorBox(e));
          if (!batch) card.hidden = true;
        }
      } finally {
        fetching = false;
      }
      tick();
    }

    function enlarge() {
      if (!shown) return;
      const bigCanvas = h('canvas', { role: 'img', 'aria-label': '放大的信用码二维码' });
      const bigSeconds = h('strong', {}, seconds.textContent);
      const close = () => {
        overlay.remove();
        document.removeEventListener('keydown', onKey);
        big = null;
        frame.focus();
      };
      const onKey = (e) => { if (e.key === 'Escape') close(); };
      const overlay = h('div', {
        class: `overlay qr-big code-${batch.colour}`, role: 'dialog', 'aria-modal': 'true', 'aria-label': '放大的信用码',
        onclick: close,
      },
      h('span', { class: 'colour-badge' }, badge.textContent),
      h('p', { class: 'code-name' }, name.textContent),
      h('div', { class: 'qr-frame' }, bigCanvas),
      h('p', { class: 'countdown' }, bigSeconds, ' 秒后自动刷新'),
      h('button', { type: 'button', class: 'weui-btn weui-btn_default' }, '点击任意处关闭'));
      document.body.append(overlay);
      document.addEventListener('keydown', onKey);
      big = { canvas: bigCanvas, seconds: bigSeconds };
      drawQR(bigCanvas, shown, { cssSize: 560 });
      overlay.querySelector('button').focus();
    }

    async function keepAwake() {
      // The screen must not dim while the code is shown at a gate.
      try {
        if (navigator.wakeLock && document.visibilityState === 'visible') wakeLock = await navigator.wakeLock.request('screen');
      } catch {
        wakeLock = null;
      }
    }
    if (window.wx && typeof window.wx.setScreenBrightness === 'function') {
      window.wx.setScreenBrightness({ value: 1 });  // inside WeChat the page may raise it itself
    }

    const onOnline = () => { unreachable = false; retryAt = 0; refresh(); };
    const onOffline = () => tick();
    const onVisible = () => { if (document.visibilityState === 'visible') { keepAwake(); tick(); } };
    window.addEventListener('online', onOnline);
    window.addEventListener('offline', onOffline);
    document.addEventListener('visibilitychange', onVisible);
    const timer = setInterval(tick, 250);
    keepAwake();
    if (batch) tick();
    await refresh();

    return () => {
      clearInterval(timer);
      window.removeEventListener('online', onOnline);
      window.removeEventListener('offline', onOffline);
      document.removeEventListener('visibilitychange', onVisible);
      if (wakeLock) wakeLock.release().catch(() => {});
      if (big) document.querySelector('.qr-big')?.remove();
    };
  },
};
