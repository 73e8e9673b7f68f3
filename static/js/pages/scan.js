// 扫码核销: the clerk picks a measure and scans — camera (getUserMedia + the vendored jsQR), manual entry, or a
// USB scanner in keyboard mode. One code held in view redeems once. The verdict fills the screen, in colour
// and in words, with a sound and a vibration. Without network the code is verified against the cached keys
// and the clerk is told plainly that nothing was redeemed.

import { api, NetworkError } from '../api.js';
import server from '../server.js';
import { cleanScan, looksLikeToken, verifyOffline } from '../token.js';
import {
  clear, COLOUR_MARKS, COLOUR_WORDS, dialog, errorBox, fmtTime, h, KIND_WORDS, limitText, reasonText,
  remainingText, statusPill, toast,
} from '../ui.js';

const MEASURE_KEY = 'xinma.scan.measure';
const VENUE_KEY = 'xinma.scan.venue';
const MEASURES_KEY = 'xinma.scan.measures';
const KEYS_KEY = 'xinma.keys';
const FRAME_MS = 120;        // a camera frame looked at this often
const SAME_CODE_MS = 2000;   // the same text read again within this time is the same code still in view
const WEDGE_GAP_MS = 300;    // keys further apart than this are a person typing, not a scanner
const DECODE_WIDTH = 800;    // frames are scaled down to this width before decoding

function loadScript(src) {
  return new Promise((resolve, reject) => {
    const s = document.createElement('script');
    s.src = src;
    s.onload = resolve;
    s.onerror = () => reject(new Error('无法加载 ' + src));
    document.head.append(s);
  });
}

function stored(key, fallback) {
  try {
    return JSON.parse(localStorage.getItem(key)) ?? fallback;
  } catch {
    return fallback;
  }
}

function newKey() {
  return 'scan-' + (crypto.randomUUID ? crypto.randomUUID() : Date.now().toString(36) + Math.random().toString(36).slice(2));
}

// --- sound and vibration --------------------------------------------------------------------------

let audio = null;
function unlockAudio() {
  // Browsers allow sound only after a gesture: the clerk's tap on 开始扫码 (or any tap) opens it.
  try {
    audio = audio || new (window.AudioContext || window.webkitAudioContext)();
    if (audio.state === 'suspended') audio.resume();
  } catch {
    audio = null;
  }
}

function signal(ok) {
  if (navigator.vibrate) navigator.vibrate(ok ? 120 : [300, 120, 300]);
  if (!audio) return;
  const tones = ok ? [[880, 0, 0.12], [1320, 0.14, 0.16]] : [[220, 0, 0.5]];
  for (const [freq, start, length] of tones) {
    const osc = audio.createOscillator();
    const gain = audio.createGain();
    osc.type = ok ? 'sine' : 'square';
    osc.frequency.value = freq;
    gain.gain.value = 0.2;
    osc.connect(gain).connect(audio.destination);
    osc.start(audio.currentTime + start);
    osc.stop(audio.currentTime + start + length);
  }
}

// --- the verdict screen ---------------------------------------------------------------------------

function colourWords(colour) {
  return colour ? `${COLOUR_MARKS[colour]} ${COLOUR_WORDS[colour]}` : '';
}

function verdictView(v, measure, onClose) {
  let kind;
  let mark;
  let headline;
  const lines = [];
  if (v.offline) {
    kind = 'offline';
    mark = '!';
    headline = '离线核验 · 未核销';
    lines.push(h('p', { class: 'reason' }, v.valid ? '签名有效，码在有效期内' : reasonText(v.reason)));
    if (v.claims) {
      lines.push(h('p', { class: 'facts-big' }, `签发时码色：${colourWords(v.claims.colour)} · ${KIND_WORDS[v.claims.kind] || ''}`
        + (v.claims.grade ? ` · ${v.claims.grade}级` : '')));
      if (v.valid && measure) {
        const fits = measure.eligible_colours.includes(v.claims.colour);
        lines.push(h('p', { class: 'facts-big' }, fits ? '码色符合本措施条件' : '码色不符合本措施条件'));
      }
    }
    lines.push(h('p', { class: 'facts-big' }, v.note || '网络不可用，未能核销。请联网后重新扫码。'));
  } else {
    const ok = v.status === 'redeemed';
    kind = ok ? 'redeemed' : 'rejected';
    mark = ok ? '✓' : '✕';
    headline = ok ? '核销成功' : '未通过';
    lines.push(h('p', { class: 'reason' }, ok ? v.incentive.title : v.message));
    if (v.subject) lines.push(h('p', { class: 'facts-big' }, `${v.subject.name} · ${colourWords(v.subject.colour)}`));
    if (ok) lines.push(h('p', { class: 'facts-big' }, remainingText(v.remaining)));
    else lines.push(h('p', { class: 'facts-big' }, v.incentive ? v.incentive.title : ''));
    if (v.reason) lines.push(h('p', { class: 'code' }, `原因代码：${v.reason}`));
  }
  const button = h('button', { type: 'button', class: 'weui-btn', onclick: onClose }, '继续扫码');
  const view = h('div', {
    class: `overlay verdict verdict-${kind}`, id: 'verdict', role: 'alertdialog', 'aria-modal': 'true',
    'aria-labelledby': 'verdict-headline', 'aria-describedby': 'verdict-details',
    dataset: { status: v.offline ? 'offline' : v.status, reason: v.reason || '' },
  },
  h('div', { class: 'mark', 'aria-hidden': 'true' }, mark),
  h('p', { class: 'headline', id: 'verdict-headline' }, headline),
  h('div', { id: 'verdict-details' }, lines),
  button);
  return { view, button };
}

// --- the page -------------------------------------------------------------------------------------

export default {
  name: 'scan',
  title: '扫码核销',
  tab: '扫码',
  roles: ['clerk', 'org_admin'],
  async render(main, ctx) {
    const orgIds = ctx.organisationsOf(ctx.me, 'clerk', 'org_admin');
    let measures = stored(MEASURES_KEY, []);
    let keys = stored(KEYS_KEY, null);
    let stream = null;
    let loop = null;
    let busy = false;
    let last = { text: null, seen: 0 };
    let verdict = null;
    let wedge = { text: '', at: 0 };
    let closed = false;

    try {
      const pages = await Promise.all(orgIds.map((id) => api('GET', `/organisations/${id}/incentives`, { query: { status: 'open', limit: 200 } })));
      measures = pages.flatMap((p) => p.items).filter((i) => i.can_redeem && i.open_now);
      localStorage.setItem(MEASURES_KEY, JSON.stringify(measures));
    } catch (e) {
      if (!(e instanceof NetworkError)) throw e;  // offline: the measures cached last time
    }
    try {
      const jwks = await api('GET', '/keys');
      keys = { keys: jwks.keys, fetched_at: new Date().toISOString() };
      localStorage.setItem(KEYS_KEY, JSON.stringify(keys));
    } catch {
      // keep the cached keys; offline verification says so if there are none
    }

    let measureId = Number(localStorage.getItem(MEASURE_KEY)) || null;
    if (!measures.some((m) => m.id === measureId)) measureId = measures.length === 1 ? measures[0].id : null;
    const measure = () => measures.find((m) => m.id === measureId) || null;

    // -- measure and venue
    const venueSelect = h('select', {
      name: 'venue', onchange: () => localStorage.setItem(VENUE_KEY, venueSelect.value),
    });
    const venueField = h('label', { class: 'field' }, h('span', {}, '核销地点'), venueSelect);
    function fillVenues() {
      const m = measure();
      const venues = (m && m.venues) || [];
      venueField.hidden = !venues.length;
      const saved = localStorage.getItem(VENUE_KEY);
      clear(venueSelect, venues.map((v) => h('option', { value: v, selected: v === saved }, v)));
    }
    const picker = h('fieldset', { class: 'field measure-pick' }, h('legend', {}, '核销措施'),
      measures.length ? measures.map((m) => h('label', { class: 'check' },
        h('input', {
          type: 'radio', name: 'measure', value: String(m.id), checked: m.id === measureId,
          onchange: () => {
            measureId = m.id;
            localStorage.setItem(MEASURE_KEY, String(m.id));
            fillVenues();
          },
        }),
        h('span', {}, h('strong', {}, m.title), h('br'),
          h('span', { class: 'small muted' }, `${m.organisation.name} · ${m.eligible_colours.map((c) => COLOUR_WORDS[c]).join('、')} · ${limitText(m)}`))))
        : h('p', { class: 'empty' }, '本单位暂无您可核销的开放措施。'));
    fillVenues();

    // -- camera
    const video = h('video', { playsinline: true, muted: true, 'aria-label': '摄像头画面' });
    const canvas = document.createElement('canvas');
    const cameraOff = h('div', { class: 'camera-off' }, '摄像头未开启');
    const camera = h('div', { class: 'camera' }, video, h('div', { class: 'aim', 'aria-hidden': 'true' }), cameraOff);
    const startButton = h('button', { type: 'button', class: 'weui-btn weui-btn_primary', onclick: () => start() }, '开始扫码');
    const stopButton = h('button', { type: 'button', class: 'weui-btn weui-btn_default', hidden: true, onclick: () => stop() }, '停止扫码');
    const scanStatus = h('p', { role: 'status', class: 'small muted', id: 'scan-status' });
    const offlineNote = h('p', { class: 'notice', hidden: navigator.onLine },
      '离线模式：只能核验信用码的真伪、有效期和签发时码色，不能核销。');
    const problem = h('div');

    // -- manual entry
    const manual = h('textarea', { id: 'manual-token', rows: 3, spellcheck: false, autocomplete: 'off', placeholder: 'XM:…' });
    const manualForm = h('form', {
      class: 'card',
      onsubmit: (e) => {
        e.preventDefault();
        if (manual.value.trim()) handle(manual.value, { explicit: true });
      },
    },
    h('h3', {}, '手动输入'),
    h('label', { class: 'field' }, h('span', {}, '信用码内容'), manual,
      h('small', { class: 'hint' }, '扫码枪（USB 键盘模式）无需点这里：在本页直接扫描即可。')),
    h('button', { type: 'submit', class: 'weui-btn weui-btn_default btn-block' }, '提交核销'));

    // -- recent redemptions
    const recent = h('ul', { class: 'list', id: 'recent' });

    clear(main,
      problem, offlineNote,
      h('section', { class: 'card' }, picker, venueField),
      h('section', { class: 'card' }, camera, scanStatus, h('div', { class: 'btn-row' }, startButton, stopButton)),
      manualForm,
      h('h2', {}, '最近核销'),
      recent);

    async function start() {
      unlockAudio();
      clear(problem);
      if (!measure()) {
        clear(problem, errorBox({ message: '请先选择核销措施' }));
        return;
      }
      if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
        clear(problem, errorBox({ message: '此浏览器无法使用摄像头（需要 HTTPS），请用手动输入或扫码枪。' }));
        return;
      }
      try {
        if (!window.jsQR) await loadScript('vendor/jsqr/jsQR.js');
        stream = await navigator.mediaDevices.getUserMedia({
          video: { facingMode: { ideal: 'environment' }, width: { ideal: 1280 }, height: { ideal: 720 } }, audio: false,
        });
      } catch (e) {
        const why = e.name === 'NotAllowedError' ? '未获得摄像头权限' : e.name === 'NotFoundError' ? '未找到摄像头' : (e.message || e.name);
        clear(problem, errorBox({ message: `${why}，请用手动输入或扫码枪。` }));
        return;
      }
      if (closed) { stop(); return; }
      last = { text: null, seen: 0 };  // a new scanning session: the code in view counts again
      video.srcObject = stream;
      await video.play().catch(() => {});
      cameraOff.hidden = true;
      startButton.hidden = true;
      stopButton.hidden = false;
      scanStatus.textContent = '正在扫码：请将信用码对准框内';
      const tick = () => {
        if (!stream) return;
        read();
        loop = setTimeout(tick, FRAME_MS);
      };
      tick();
    }

    function stop() {
      clearTimeout(loop);
      loop = null;
      if (stream) stream.getTracks().forEach((t) => t.stop());
      stream = null;
      video.srcObject = null;
      cameraOff.hidden = false;
      startButton.hidden = false;
      stopButton.hidden = true;
      scanStatus.textContent = '';
    }

    function read() {
      if (video.readyState < 2 || !video.videoWidth) return;
      const scale = Math.min(1, DECODE_WIDTH / video.videoWidth);
      const w = Math.round(video.videoWidth * scale);
      const ht = Math.round(video.videoHeight * scale);
      canvas.width = w;
      canvas.height = ht;
      const g = canvas.getContext('2d', { willReadFrequently: true });
      g.drawImage(video, 0, 0, w, ht);
      const found = window.jsQR(g.getImageData(0, 0, w, ht).data, w, ht, { inversionAttempts: 'dontInvert' });
      if (found && found.data) handle(found.data, { explicit: false });
    }

    async function handle(raw, { explicit }) {
      const text = cleanScan(raw);
      const now = Date.now();
      if (text === last.text && (busy || (!explicit && now - last.seen < SAME_CODE_MS))) {
        last.seen = now;  // still the same code in view (or still being judged): it counts once
        scanStatus.dataset.ignored = String(Number(scanStatus.dataset.ignored || 0) + 1);
        return;
      }
      if (busy) return;  // the next frame brings it again
      last = { text, seen: now };
      const m = measure();
      if (!m) {
        clear(problem, errorBox({ message: '请先选择核销措施' }));
        return;
      }
      if (!looksLikeToken(text)) {
        show({ status: 'rejected', reason: 'bad_format', message: reasonText('bad_format'), subject: null, incentive: m });
        return;
      }
      busy = true;
      try {
        show(navigator.onLine ? await redeem(text, m) : await offline(text));
      } finally {
        busy = false;
        manual.value = '';
      }
      loadRecent();
    }

    async function redeem(token, m) {
      const body = { token, incentive_id: m.id, idempotency_key: newKey(), venue: venueField.hidden ? null : venueSelect.value };
      for (let attempt = 0; attempt < 2; attempt++) {
        try {
          return await api('POST', '/redemptions', { body, timeout: 8000 });
        } catch (e) {
          if (!(e instanceof NetworkError)) {
            clear(problem, errorBox(e));
            return { status: 'rejected', reason: e.code, message: e.message, subject: null, incentive: m };
          }
          // Same idempotency key on the retry: if the first try did reach the server, it is not redeemed twice.
        }
      }
      return offline(token, '网络不可用，未能核销。请联网后重新扫码。');
    }

    async function offline(token, note) {
      const result = await verifyOffline(token, keys ? keys.keys : []);
      if (!keys) result.note = '没有缓存的验证密钥，无法离线核验。请联网后重新扫码。';
      else result.note = note;
      return { offline: true, ...result };
    }

    function show(v) {
      if (verdict) verdict.view.remove();
      const close = () => {
        if (verdict) verdict.view.remove();
        verdict = null;
      };
      verdict = verdictView(v, measure(), close);
      document.body.append(verdict.view);
      verdict.button.focus();
      signal(v.status === 'redeemed');
    }

    async function loadRecent() {
      try {
        const pages = await Promise.all(orgIds.map((id) => api('GET', `/organisations/${id}/redemptions`, { query: { limit: 10 } })));
        const items = pages.flatMap((p) => p.items).sort((a, b) => b.created_at.localeCompare(a.created_at)).slice(0, 10);
        clear(recent, items.length ? items.map(recentItem) : h('li', { class: 'empty' }, '还没有核销记录。'));
      } catch (e) {
        if (!(e instanceof NetworkError)) clear(recent, h('li', {}, errorBox(e)));
      }
    }

    function recentItem(r) {
      const age = (Date.now() - Date.parse(r.created_at)) / 1000;
      const voidable = r.status === 'redeemed' && age < server.void_window_seconds;
      return h('li', { class: 'recent-item', dataset: { redemption: r.id, status: r.status } },
        h('div', {},
          h('div', { class: 'spread' }, h('strong', {}, r.subject ? `${r.subject.name} · ${colourWords(r.subject.colour)}` : '无法识别的码'),
            r.status === 'rejected' ? h('span', { class: 'pill pill-red' }, '✕ 未通过') : statusPill(r.status)),
          h('div', { class: 'small muted' }, `${fmtTime(r.created_at)} · ${r.incentive}${r.clerk ? ' · ' + r.clerk : ''}`),
          r.reason ? h('div', { class: 'small' }, reasonText(r.reason)) : null),
        voidable ? h('button', {
          type: 'button', class: 'weui-btn weui-btn_warn', 'aria-label': `撤销 ${fmtTime(r.created_at)} 的核销`,
          onclick: async () => {
            const ok = await dialog({
              title: '撤销这次核销？', message: `${r.incentive}，${fmtTime(r.created_at)}。撤销后名额退回，持码人会收到通知。`,
              confirm: '撤销', danger: true,
            });
            if (!ok) return;
            try {
              await api('POST', `/redemptions/${r.id}/void`, { body: {} });
              toast('已撤销');
            } catch (e) {
              clear(problem, errorBox(e));
            }
            loadRecent();
          },
        }, '撤销') : null);
    }

    // -- a USB scanner in keyboard mode types the code and presses Enter, faster than any person
    function onKey(e) {
      const target = e.target;
      if (e.ctrlKey || e.metaKey || e.altKey) return;
      if (target && ['INPUT', 'TEXTAREA', 'SELECT'].includes(target.tagName)) return;
      const now = Date.now();
      if (now - wedge.at > WEDGE_GAP_MS) wedge.text = '';
      wedge.at = now;
      if (e.key === 'Enter') {
        if (wedge.text) {
          e.preventDefault();
          unlockAudio();
          const text = wedge.text;
          wedge.text = '';
          handle(text, { explicit: false });
        }
      } else if (e.key.length === 1) {
        if (wedge.text) e.preventDefault();  // the scanner's keys must not press the focused button
        wedge.text += e.key;
      }
    }
    const onNetwork = () => { offlineNote.hidden = navigator.onLine; };
    document.addEventListener('keydown', onKey);
    window.addEventListener('online', onNetwork);
    window.addEventListener('offline', onNetwork);
    document.addEventListener('pointerdown', unlockAudio, { once: true });
    loadRecent();

    return () => {
      closed = true;
      stop();
      if (verdict) verdict.view.remove();
      document.removeEventListener('keydown', onKey);
      window.removeEventListener('online', onNetwork);
      window.removeEventListener('offline', onNetwork);
    };
  },
};
