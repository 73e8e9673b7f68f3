// The app shell: who is signed in, the hash router (#/code, #/scan …), the tab bar and the offline badge.

import { api, ApiError, NetworkError, sessionToken, setSessionToken } from './api.js';
import { clear, errorBox, h, loading } from './ui.js';
import login from './pages/login.js';
import code from './pages/code.js';
import incentives from './pages/incentives.js';
import declare from './pages/declare.js';
import notices from './pages/notices.js';
import offers from './pages/offers.js';
import documents from './pages/documents.js';
import serviceAddress from './pages/service-address.js';
import serve from './pages/serve.js';
import policies from './pages/policies.js';
import scan from './pages/scan.js';
import org from './pages/org.js';
import admin from './pages/admin.js';
import me from './pages/me.js';

// Tab order; a page shows in the tab bar when the account holds one of its roles (no roles: everyone) and,
// if the page has `when(who)`, that says yes (who = {me, orgs}: e.g. only members of a department serve
// documents). A page reached only by link (a notice's #/offers/12) sets `hidden: true`: routed, but no tab;
// its `parent` tab is the one lit. A page with `badge()` shows the number it resolves to on its tab.
const PAGES = [
  code, incentives, declare, notices, offers, documents, serviceAddress, scan, org, serve, admin, policies, me,
];
const BY_NAME = Object.fromEntries([login, ...PAGES].map((p) => [p.name, p]));

// orgs: the organisations the account works for (clerk, org_admin), with their kind.
const state = { me: null, orgs: [], cleanup: null };

export function roles(account) {
  return new Set(((account && account.roles) || []).map((r) => r.role));
}

export function organisationsOf(account, ...wanted) {
  const ids = new Set();
  for (const r of (account && account.roles) || []) {
    if (wanted.includes(r.role) && r.organisation_id) ids.add(r.organisation_id);
  }
  return [...ids];
}

function allowed(page, account) {
  if (page.roles) {
    const mine = roles(account);
    if (!page.roles.some((r) => mine.has(r))) return false;
  }
  return !page.when || Boolean(page.when({ me: account, orgs: state.orgs }));
}

function home(account) {
  const first = PAGES.find((p) => p.roles && !p.hidden && allowed(p, account));
  return first ? first.name : 'me';
}

export function go(name) {
  if (location.hash === '#/' + name) route();
  else location.hash = '#/' + name;
}

const ME_KEY = 'xinma.me';
const ORGS_KEY = 'xinma.orgs';

// The account is kept beside the token, so that a page reopened without network still knows who is
// signed in (the code page then shows the offline batch).
async function loadMe() {
  if (!sessionToken()) return null;
  try {
    const account = await api('GET', '/me');
    sessionStorage.setItem(ME_KEY, JSON.stringify(account));
    state.orgs = await loadOrganisations(account);
    return account;
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) {
      setSessionToken(null);
      sessionStorage.removeItem(ME_KEY);
      return null;
    }
    const cached = sessionStorage.getItem(ME_KEY);
    if (e instanceof NetworkError && cached) {
      state.orgs = JSON.parse(sessionStorage.getItem(ORGS_KEY) || '[]');
      return JSON.parse(cached);
    }
    throw e;
  }
}

/** The organisations I work for, with their kind (a court serves documents, a department issues policies). */
async function loadOrganisations(account) {
  const ids = organisationsOf(account, 'org_admin', 'clerk');
  const found = await Promise.all(ids.map((id) => api('GET', `/organisations/${id}`).catch((e) => {
    if (e instanceof NetworkError) throw e;
    return null;  // one I may no longer see: leave it out
  })));
  const orgs = found.filter(Boolean);
  sessionStorage.setItem(ORGS_KEY, JSON.stringify(orgs));
  return orgs;
}

export async function signedIn(token) {
  sessionStorage.clear();  // nothing of whoever used this tab before (their offline codes above all)
  setSessionToken(token);
  state.me = await loadMe();
  go(home(state.me));
}

export async function signOut() {
  try {
    await api('DELETE', '/session');
  } catch {
    // Signing out locally is what matters; the server token expires anyway.
  }
  setSessionToken(null);
  sessionStorage.clear();
  state.me = null;
  state.orgs = [];
  go('login');
}

function renderTabbar(current) {
  const bar = document.getElementById('tabbar');
  if (!state.me) {
    bar.hidden = true;
    return;
  }
  bar.hidden = false;
  clear(bar, PAGES.filter((p) => !p.hidden && allowed(p, state.me)).map((p) => h('a', {
    href: '#/' + p.name, 'aria-current': p.name === current ? 'page' : null, dataset: { tab: p.name },
  }, h('span', { class: 'tab-label' }, p.tab || p.title), h('span', { class: 'tab-badge', hidden: true }))));
  refreshBadges();
}

let badgeRun = 0;

/** The numbers on the tabs (unread notices): after every navigation, and when a page says they changed. */
export async function refreshBadges() {
  const run = ++badgeRun;
  const bar = document.getElementById('tabbar');
  for (const p of PAGES) {
    if (!p.badge || p.hidden || !state.me || !allowed(p, state.me)) continue;
    let n;
    try {
      n = await p.badge();
    } catch {
      continue;  // offline or refused: leave the tab as it was
    }
    const link = bar.querySelector(`[data-tab="${p.name}"]`);
    if (run !== badgeRun || !link) return;
    const badge = link.querySelector('.tab-badge');
    badge.hidden = !n;
    badge.textContent = n > 99 ? '99+' : String(n || '');
    if (n) link.setAttribute('aria-label', `${p.tab || p.title}，${n} 条未读`);
    else link.removeAttribute('aria-label');
    link.dataset.badge = String(n || 0);
  }
}

let generation = 0;

async function route() {
  const main = document.getElementById('main');
  // #/name or #/name/param… (a notice's page: #/offers/12, #/documents/7)
  const [name, ...params] = location.hash.replace(/^#\/?/, '').split('?')[0].split('/');
  const mine = ++generation;
  if (state.cleanup) {
    try { state.cleanup(); } catch { /* a page's cleanup must never block navigation */ }
    state.cleanup = null;
  }
  let page = BY_NAME[name];
  if (!state.me) {
    page = login;
  } else if (!page || page === login || !allowed(page, state.me)) {
    const target = home(state.me);
    if (location.hash !== '#/' + target) {
      location.replace('#/' + target);
      return;
    }
    page = BY_NAME[target];
  }
  document.title = `${page.title} · 信码`;
  document.getElementById('page-title').textContent = page.title;
  document.body.dataset.page = page.name;
  const parent = typeof page.parent === 'function' ? page.parent({ me: state.me, orgs: state.orgs }) : page.parent;
  renderTabbar(parent || page.name);
  // Each visit renders into a view of its own: a page still loading when the person moves on writes
  // into a detached view, never over the next page.
  const view = h('div', { class: 'view', dataset: { view: page.name } }, loading());
  clear(main, view);
  let cleanup = null;
  try {
    cleanup = (await page.render(view, {
      me: state.me, orgs: state.orgs, params, go, signedIn, signOut, roles, organisationsOf, refreshBadges,
      hasPage: (n) => n in BY_NAME && allowed(BY_NAME[n], state.me),
    })) || null;
  } catch (e) {
    clear(view, errorBox(e instanceof NetworkError ? { message: '网络不可用，请稍后重试' } : e));
  }
  if (mine !== generation) {
    if (cleanup) cleanup();  // superseded while loading: stop its timers and camera at once
    return;
  }
  state.cleanup = cleanup;
  view.dataset.ready = 'true';
  main.focus({ preventScroll: true });
}

function showNetwork() {
  document.getElementById('net').hidden = navigator.onLine;
}

async function boot() {
  window.addEventListener('online', showNetwork);
  window.addEventListener('offline', showNetwork);
  showNetwork();
  window.addEventListener('xinma:signed-out', () => {
    sessionStorage.clear();
    state.me = null;
    state.orgs = [];
    go('login');
  });
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible' && state.me) refreshBadges();
  });
  try {
    state.me = await loadMe();
  } catch (e) {
    state.me = null;
    clear(document.getElementById('main'), errorBox(e));
  }
  window.addEventListener('hashchange', route);
  await route();
}

boot();
