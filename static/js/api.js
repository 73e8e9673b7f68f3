// The JSON API under /api/v1: the session token, one fetch wrapper, and the two kinds of failure.
//
// The token lives in sessionStorage, per tab: the demo's story is a citizen showing a code on one tab and
// a clerk scanning it on another, which localStorage (shared by every tab) would make impossible.

const SESSION_KEY = 'xinma.session';
const DEFAULT_TIMEOUT_MS = 15000;

/** The server answered with an error: `code` is the stable machine code (docs/errors.md). */
export class ApiError extends Error {
  constructor(status, code, message, body) {
    super(message);
    this.status = status;
    this.code = code;
    this.body = body;
    this.detail = (body && body.error && body.error.detail) || {};
  }
}

/** No answer at all: offline, server unreachable, or timed out. */
export class NetworkError extends Error {}

export function sessionToken() {
  return sessionStorage.getItem(SESSION_KEY);
}

export function setSessionToken(token) {
  if (token) sessionStorage.setItem(SESSION_KEY, token);
  else sessionStorage.removeItem(SESSION_KEY);
}

function urlOf(path, query) {
  let url = '/api/v1' + path;
  if (query) {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) {
      if (v !== undefined && v !== null && v !== '') params.set(k, v);
    }
    const qs = params.toString();
    if (qs) url += '?' + qs;
  }
  return url;
}

export async function api(method, path, { body, query, timeout = DEFAULT_TIMEOUT_MS } = {}) {
  const url = urlOf(path, query);
  // A FormData body (a document's upload) goes as multipart/form-data, its boundary set by the browser.
  const form = typeof FormData !== 'undefined' && body instanceof FormData;
  const headers = { Accept: 'application/json' };
  if (body !== undefined && !form) headers['Content-Type'] = 'application/json';
  const response = await send(url, {
    method, headers, body: body === undefined || form ? body : JSON.stringify(body),
  }, timeout);
  if (response.status === 204) return null;
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (!response.ok) throw failure(response, data);
  return data;
}

/**
 * A file the API serves (a legal document's content, a receipt) fetched with the bearer token, which a plain
 * link or an <iframe src> could not send: {blob, type, headers}. Errors as api().
 */
export async function apiFile(path, { query, timeout = 60000 } = {}) {
  const response = await send(urlOf(path, query), { method: 'GET', headers: {} }, timeout);
  if (!response.ok) {
    let data = null;
    try { data = await response.json(); } catch { data = null; }
    throw failure(response, data);
  }
  const blob = await response.blob();
  return { blob, type: (response.headers.get('Content-Type') || '').split(';')[0], headers: response.headers };
}

async function send(url, init, timeout) {
  const token = sessionToken();
  if (token) init.headers.Authorization = 'Bearer ' + token;
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeout);
  try {
    return await fetch(url, { ...init, cache: 'no-store', signal: controller.signal });
  } catch (e) {
    throw new NetworkError(e.name === 'AbortError' ? '网络超时' : '网络不可用');
  } finally {
    clearTimeout(timer);
  }
}

function failure(response, data) {
  const err = (data && data.error) || {};
  if (response.status === 401 && sessionToken()) {
    window.dispatchEvent(new CustomEvent('xinma:signed-out'));
  }
  return new ApiError(response.status, err.code || 'http_' + response.status,
    err.message || `请求失败（${response.status}）`, data);
}
