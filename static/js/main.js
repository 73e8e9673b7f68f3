// The app shell: who is signed in, the hash router (#/code, #/scan …), the tab bar and the offline badge.

import { api, ApiError, NetworkError, sessionToken, setSessionToken } from './api.js';
import { clear, errorBox, h, loading } from './ui.js';
import login from './pages/login.js';
import code from './pages/code.js';
import incentives from './pages/incentives.js';
import declare from './pages/declare.js';
import notices from './pages/notices.js';
import scan from './pages/scan.js';
import org from './pages/org.js';
import admin from './pages/admin.js';
import me from './pages/me.js';

// Tab order; a page shows in the tab bar when the account holds one of its roles (no roles: everyone).
// A page reached only by link (a notice's #/offers/12) sets `hidden: true`: routed, but no tab.
const PAGES = [code, incentives, declare, notices, scan, org, admin, me];
const BY_NAME = Object.fromEntries([login, ...PAGES].map((p) => [p.name, p]));

const state = { me: null, cleanup: null };

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
  if (!page.roles) return true;
  const mine = roles(account);
  return page.roles.some((r) => mine.has(r));
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

// The account is kept beside the token, so that a page reopened without network still knows who is
// signed in (the code page then shows the offline batch).
async function loadMe() {
  if (!sessionToken()) return null;
  try {
    const account = await api('GET', '/me');
    sessionStorage.setItem(ME_KEY, JSON.stringify(account));
    return account;
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) {
      setSessionToken(null);
      sessionStorage.removeItem(ME_KEY);
      return null;
    }
    const cached = sessionStorage.getItem(ME_KEY);
    if (e instanceof NetworkError && cached) return JSON.parse(cached);
    throw e;
  }
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
  }, p.tab || p.title)));
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
  renderTabbar(page.name);
  // Each visit renders into a view of its own: a page still loading when the person moves on writes
  // into a detached view, never over the next page.
  const view = h('div', { class: 'view', dataset: { view: page.name } }, loading());
  clear(main, view);
  let cleanup = null;
  try {
    cleanup = (await page.render(view, {
      me: state.me, params, go, signedIn, signOut, roles, organisationsOf, hasPage: (n) => n in BY_NAME,
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
    go('login');
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
