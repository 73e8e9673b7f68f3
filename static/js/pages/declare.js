// 荣誉申报: declare an honour (for myself or my enterprise) and follow its review.

import { api } from '../api.js';
import { holderChoices } from '../holders.js';
import { clear, errorBox, field, fmtDateTime, formValues, h, statusPill, toast, today } from '../ui.js';

function fits(category, kind) {
  if (category.kind !== 'honour') return false;
  if (category.applies_to === 'any') return true;
  return kind === 'person' ? category.applies_to === 'person' : category.applies_to === 'organisation';
}

export default {
  name: 'declare',
  title: '荣誉申报',
  tab: '申报',
  roles: ['citizen', 'enterprise_agent'],
  async render(main, ctx) {
    const [categories, mine] = await Promise.all([
      api('GET', '/categories', { query: { limit: 200 } }),
      api('GET', '/me/declarations', { query: { limit: 100 } }),
    ]);
    const choices = holderChoices(ctx.me);
    const problem = h('div');
    const categorySelect = h('select', { name: 'category', required: true });
    const subjectSelect = choices.length > 1 ? h('select', { name: 'subject_id' },
      choices.map((c, n) => h('option', { value: c.id === null ? '' : String(c.id), selected: n === 0 }, c.label))) : null;

    function fillCategories() {
      const chosen = subjectSelect ? choices[subjectSelect.selectedIndex] : choices[0];
      const kind = chosen ? chosen.kind : 'person';
      clear(categorySelect, h('option', { value: '' }, '请选择'),
        categories.items.filter((c) => fits(c, kind)).map((c) => h('option', { value: c.code }, c.name)));
    }
    if (subjectSelect) subjectSelect.addEventListener('change', fillCategories);
    fillCategories();

    const form = h('form', {
      class: 'card', 'aria-labelledby': 'declare-title',
      onsubmit: async (e) => {
        e.preventDefault();
        const v = formValues(form);
        const body = {
          category: v.category, title: v.title, issued_by: v.issued_by, awarded_on: v.awarded_on,
          valid_until: v.valid_until, evidence: v.evidence,
        };
        if (v.subject_id) body.subject_id = Number(v.subject_id);
        try {
          await api('POST', '/declarations', { body });
          toast('已提交，等待审核');
          ctx.go('declare');
        } catch (err) {
          clear(problem, errorBox(err));
          problem.scrollIntoView({ block: 'center' });
        }
      },
    },
    h('h2', { id: 'declare-title' }, '申报荣誉信息'),
    h('p', { class: 'muted small' }, '平台管理员审核通过后，荣誉记入信用档案，码色随之更新。'),
    problem,
    subjectSelect ? field('为谁申报', subjectSelect) : null,
    field('荣誉类别', categorySelect),
    field('荣誉名称', h('input', { name: 'title', required: true, maxlength: 200, placeholder: '例如：2025年度星级志愿者' })),
    field('授予单位', h('input', { name: 'issued_by', required: true, maxlength: 100 })),
    field('授予日期', h('input', { name: 'awarded_on', type: 'date', required: true, max: today() })),
    field('有效期至', h('input', { name: 'valid_until', type: 'date' }), '长期有效可不填'),
    field('证明材料', h('textarea', { name: 'evidence', required: true, maxlength: 2000 }), '证书编号、公示网址等，最多 2000 字'),
    h('button', { type: 'submit', class: 'weui-btn weui-btn_primary btn-block' }, '提交申报'));

    clear(main,
      h('h2', {}, '我的申报'),
      mine.items.length ? h('ul', { class: 'list', id: 'declarations' }, [...mine.items].reverse().map((d) => h('li', {},
        h('div', { class: 'spread' }, h('span', { class: 'title' }, d.title), statusPill(d.status)),
        h('p', { class: 'small muted' }, `${d.issued_by} · 授予于 ${d.awarded_on} · 提交于 ${fmtDateTime(d.created_at)}`),
        d.review_reason ? h('p', { class: d.status === 'rejected' ? 'error' : 'info' }, '审核意见：', d.review_reason) : null,
        d.status === 'approved' ? h('p', { class: 'small' }, '已记入信用档案。') : null)))
        : h('p', { class: 'empty' }, '还没有申报。'),
      form);
    return null;
  },
};
