// Small DOM helpers shared by the pages: element building without innerHTML, words, dates, dialogs, toasts.

import server from './server.js';

/**
 * h('button', {class: 'weui-btn', onclick: fn, 'aria-label': '…'}, 'text', child…)
 * Text is always set as text (never parsed as HTML), so data from the API cannot inject markup.
 */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  let deferredValue;
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2), value);
    } else if (key === 'class') {
      el.className = value;
    } else if (key === 'dataset') {
      Object.assign(el.dataset, value);
    } else if (key === 'text') {
      el.textContent = value;
    } else if (key === 'value') {
      deferredValue = value;  // a <select>'s value can only be set once its options are there
    } else if (key === 'checked' || key === 'disabled' || key === 'selected') {
      el[key] = value;
    } else {
      el.setAttribute(key, value === true ? '' : value);
    }
  }
  append(el, children);
  if (deferredValue !== undefined) el.value = deferredValue;
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : String(child));
  }
}

export function clear(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

// --- words ------------------------------------------------------------------------------------------

export const COLOUR_WORDS = server.colours;  // green -> 绿码 …
// A shape beside the word, so that the colour never carries the meaning alone (and survives greyscale).
export const COLOUR_MARKS = { green: '✓', blue: '○', red: '✕' };
export const COLOUR_MEANINGS = {
  green: '有荣誉信息，且无不良信用记录',
  blue: '无荣誉信息，也无不良信用记录',
  red: '有不良信用记录',
};
export const KIND_WORDS = { person: '个人', enterprise: '企业', institution: '机构' };
export const ROLE_WORDS = {
  citizen: '市民', enterprise_agent: '企业经办人', clerk: '工作人员', org_admin: '单位管理员',
  platform_admin: '平台管理员',
};
export const STATUS_WORDS = {
  pending: '待审核', approved: '已通过', rejected: '已驳回', suspended: '已停用',
  redeemed: '已核销', voided: '已撤销', open: '开放中', closed: '已关闭',
};
export const PERIOD_WORDS = { day: '每天', week: '每周', month: '每月', year: '每年', ever: '累计' };
export const PERIOD_LEFT = { day: '今日', week: '本周', month: '本月', year: '今年', ever: '累计' };
export const RISK_WORDS = { high: '高风险', elevated: '较高风险', moderate: '较低风险', low: '低风险' };

// Offers (免申即享): each state in words, and the tone of its pill (amber: the enterprise's click is awaited).
export const OFFER_STATE_WORDS = {
  matched: '待推送', notified: '待确认', confirmed: '已确认，待审核', declined: '已放弃', approved: '已审核，待拨付',
  held: '暂缓兑现', disbursed: '已拨付，待确认到账', received: '已到账', expired: '已过期', cancelled: '已撤销',
};
const OFFER_STATE_TONES = {
  notified: 'amber', disbursed: 'amber', confirmed: 'blue', approved: 'blue', received: 'green', held: 'red',
};
export const POLICY_STATE_WORDS = { draft: '草稿', published: '已发布', closed: '已关闭' };
// Legal documents: whether the commitment was kept (honoured within the deadline, evaded after it) …
export const DOCUMENT_STATUS_WORDS = { served: '已送达，待查阅', honoured: '已按时接收', evaded: '逾期未接收' };
// … and service-address commitments.
export const COMMITMENT_STATUS_WORDS = { active: '生效中', superseded: '已变更', revoked: '已撤回' };
export const CHANNEL_WORDS = { wechat: '微信', email: '电子邮箱', sms: '短信' };

export function reasonText(code) {
  return server.reasons[code] || code;
}

export function colourPill(colour) {
  if (!colour) return h('span', { class: 'pill pill-grey' }, '无码');
  return h('span', { class: `pill pill-${colour}` }, `${COLOUR_MARKS[colour]} ${COLOUR_WORDS[colour]}`);
}

export function offerPill(state) {
  return h('span', { class: `pill pill-${OFFER_STATE_TONES[state] || 'grey'}`, dataset: { state } },
    OFFER_STATE_WORDS[state] || state);
}

export function documentPill(document) {
  if (document.acknowledged_at) return h('span', { class: 'pill pill-green', dataset: { state: 'acknowledged' } }, '✓ 已签收');
  if (document.status === 'evaded') return h('span', { class: 'pill pill-red', dataset: { state: 'evaded' } }, '✕ 逾期未接收');
  return h('span', { class: 'pill pill-amber', dataset: { state: 'unacknowledged' } }, '待签收');
}

/** '143000.00' (yuan, as the API writes amounts) -> '143,000.00 元' */
export function yuanText(amount) {
  if (amount === null || amount === undefined) return '';
  const [whole, cents] = String(amount).split('.');
  return `${whole.replace(/\B(?=(\d{3})+(?!\d))/g, ',')}${cents ? '.' + cents : ''} 元`;
}

/** 14300000 (fen) -> '143,000.00 元' */
export function fenText(fen) {
  if (fen === null || fen === undefined) return '';
  const sign = fen < 0 ? '-' : '';
  const abs = Math.abs(fen);
  return sign + yuanText(`${Math.floor(abs / 100)}.${String(abs % 100).padStart(2, '0')}`);
}

export function statusPill(status) {
  return h('span', { class: `pill pill-${status}` }, STATUS_WORDS[status] || status);
}

export function gradeText(grade) {
  return grade ? `${grade}级` : '';
}

/** 今日剩余 1 次 · 名额剩余 19 */
export function remainingText(remaining) {
  if (!remaining) return '';
  const parts = [];
  if (remaining.quota !== null && remaining.quota !== undefined) {
    parts.push(`${PERIOD_LEFT[remaining.period] || ''}剩余 ${remaining.quota} 次`);
  }
  if (remaining.stock !== null && remaining.stock !== undefined) parts.push(`名额剩余 ${remaining.stock}`);
  return parts.join(' · ') || '不限次数';
}

export function limitText(incentive) {
  if (incentive.limit_count === null || incentive.limit_count === undefined) return '不限次数';
  return `${PERIOD_WORDS[incentive.limit_period] || ''}限 ${incentive.limit_count} 次`;
}

// --- dates (Asia/Shanghai, whatever the phone's zone) -----------------------------------------------

const ZONE = 'Asia/Shanghai';
const DATETIME = new Intl.DateTimeFormat('zh-CN', {
  timeZone: ZONE, month: 'numeric', day: 'numeric', hour: '2-digit', minute: '2-digit', hour12: false,
});
const TIME = new Intl.DateTimeFormat('zh-CN', {
  timeZone: ZONE, hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false,
});
const DAY = new Intl.DateTimeFormat('en-CA', { timeZone: ZONE, year: 'numeric', month: '2-digit', day: '2-digit' });

export function fmtDateTime(iso) {
  return iso ? DATETIME.format(new Date(iso)) : '';
}

export function fmtTime(iso) {
  return iso ? TIME.format(new Date(iso)) : '';
}

export function fmtDate(iso) {
  if (!iso) return '';
  return /^\d{4}-\d{2}-\d{2}$/.test(iso) ? iso : DAY.format(new Date(iso));
}

export function today() {
  return DAY.format(new Date());  // YYYY-MM-DD in Asia/Shanghai
}

// --- feedback ---------------------------------------------------------------------------------------

let toastTimer;
export function toast(message, ms = 2500) {
  const el = document.getElementById('toast');
  el.textContent = message;
  el.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { el.hidden = true; }, ms);
}

export function errorBox(error) {
  const code = error && error.code ? `（${error.code}）` : '';
  return h('p', { class: 'error', role: 'alert' }, (error && error.message) || '出错了', code);
}

export function loading(text = '正在加载……') {
  return h('p', { class: 'empty', role: 'status' }, text);
}

/**
 * A modal dialog; resolves with the button's value (and the reason, when asked for one), or null.
 * askReason: true for a required text area (rejecting or suspending always needs a reason), 'optional' for one
 * that may stay empty ({reason: null}).
 */
export function dialog({ title, message, confirm = '确定', cancel = '取消', danger = false, askReason = false }) {
  return new Promise((resolve) => {
    const previous = document.activeElement;
    const optional = askReason === 'optional';
    const reason = askReason ? h('textarea', { id: 'dialog-reason', required: !optional, maxlength: 500 }) : null;
    const problem = h('p', { class: 'error', role: 'alert', hidden: true }, '请填写理由');
    const close = (value) => {
      mask.remove();
      document.removeEventListener('keydown', onKey);
      if (previous && previous.focus) previous.focus();
      resolve(value);
    };
    const ok = h('button', {
      type: 'button', class: `weui-btn ${danger ? 'weui-btn_warn' : 'weui-btn_primary'}`,
      onclick: () => {
        if (askReason) {
          const text = reason.value.trim();
          if (!text && !optional) { problem.hidden = false; reason.focus(); return; }
          close({ reason: text || null });
        } else {
          close(true);
        }
      },
    }, confirm);
    const no = h('button', { type: 'button', class: 'weui-btn weui-btn_default', onclick: () => close(null) }, cancel);
    const onKey = (e) => { if (e.key === 'Escape') close(null); };
    const mask = h('div', { class: 'dialog-mask' },
      h('div', { class: 'dialog', role: 'dialog', 'aria-modal': 'true', 'aria-labelledby': 'dialog-title' },
        h('h2', { id: 'dialog-title' }, title),
        message ? h('p', {}, message) : null,
        askReason ? h('label', { class: 'field' }, h('span', {}, optional ? '理由（选填）' : '理由（必填）'), reason) : null,
        problem,
        h('div', { class: 'btn-row' }, no, ok)));
    document.body.append(mask);
    document.addEventListener('keydown', onKey);
    (reason || ok).focus();
  });
}

/** Read a form's named fields into an object; empty strings become null. */
export function formValues(form) {
  const out = {};
  for (const el of form.elements) {
    if (!el.name) continue;
    if (el.type === 'checkbox') {
      (out[el.name] = out[el.name] || []);
      if (el.checked) out[el.name].push(el.value);
    } else if (el.type === 'radio') {
      if (el.checked) out[el.name] = el.value;
    } else if (el.type === 'file') {
      continue;
    } else {
      out[el.name] = el.value.trim() === '' ? null : el.value.trim();
    }
  }
  return out;
}

export function field(label, control, hint) {
  return h('label', { class: 'field' }, h('span', {}, label), control, hint ? h('small', { class: 'hint' }, hint) : null);
}
