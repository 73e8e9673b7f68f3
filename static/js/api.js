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

export async function api(method, path, { body, query, timeout = DEFAULT_TIMEOUT_MS } = {}) {
  let url = '/api/v1' + path;
  if (query) {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) {
      if (v !== undefined && v !== null && v !== '') params.set(k, v);
    }
    const qs = params.toString();
    if (qs) url += '?' + qs;
  }
  const headers = { Accept: 'application/json' };
  const token = sessionToken();
  if (token) headers.Authorization = 'Bearer ' + token;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeout);
  let response;
  try {
    response = await fetch(url, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store', signal: controller.signal,
    });
  } catch (e) {
    throw new NetworkError(e.name === 'AbortError' ? '网络超时' : '网络不可用');
  } finally {
    clearTimeout(timer);
  }
  if (response.status === 204) return null;
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (!response.ok) {
    const err = (data && data.error) || {};
    if (response.status === 401 && token) {
      window.dispatchEvent(new CustomEvent('xinma:signed-out'));
    }
    throw new ApiError(response.status, err.code || 'http_' + response.status,
      err.message || `请求失败（${response.status}）`, data);
  }
  return data;
}
