// Whose code, measures or declarations a page shows: my own subject, or an enterprise I am the agent of.

import { h } from './ui.js';

/** [{id, kind, label}]: id null is my own subject (the API's default), else the enterprise's subject id. */
export function holderChoices(me) {
  const out = [];
  if (me.subject) out.push({ id: null, kind: me.subject.kind, label: `本人（${me.subject.name}）` });
  for (const r of me.roles) {
    if (r.role === 'enterprise_agent' && r.subject_id) out.push({ id: r.subject_id, kind: 'enterprise', label: '我经办的企业' });
  }
  return out;
}

/** Segmented buttons to switch holder; nothing when there is only one. */
export function holderTabs(choices, selected, onSelect) {
  if (choices.length < 2) return null;
  const bar = h('div', { class: 'segments subject-switch', role: 'tablist', 'aria-label': '切换主体' },
    choices.map((c) => h('button', {
      type: 'button', role: 'tab', 'aria-selected': String(c.id === selected),
      onclick: (e) => {
        for (const b of bar.children) b.setAttribute('aria-selected', String(b === e.currentTarget));
        onSelect(c.id);
      },
    }, c.id === null ? '本人' : '企业')));
  return bar;
}
