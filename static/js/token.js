// The credit-code token (docs/code-format.md): Base45 decoding, parsing, and verification offline with
// the published Ed25519 keys through WebCrypto. The scanner uses it when it cannot reach the server.

import server from './server.js';

const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:';
const VALUE = new Map([...ALPHABET].map((c, i) => [c, i]));
export const PREFIX = 'XM:';
const LENGTH = 88;
const SIGNED = 24;

export class TokenError extends Error {
  constructor(reason) {
    super(reason);
    this.reason = reason;
  }
}

/** RFC 9285. Throws TokenError('bad_format') on anything that is not Base45. */
export function base45decode(text) {
  const out = [];
  for (let i = 0; i < text.length; i += 3) {
    const chunk = text.slice(i, i + 3);
    const v = [...chunk].map((c) => VALUE.get(c));
    if (chunk.length === 1 || v.some((x) => x === undefined)) throw new TokenError('bad_format');
    if (chunk.length === 3) {
      const n = v[0] + v[1] * 45 + v[2] * 45 * 45;
      if (n > 0xffff) throw new TokenError('bad_format');
      out.push(n >> 8, n & 0xff);
    } else {
      const n = v[0] + v[1] * 45;
      if (n > 0xff) throw new TokenError('bad_format');
      out.push(n);
    }
  }
  return new Uint8Array(out);
}

const COLOURS = ['blue', 'green', 'red'];
const KINDS = ['person', 'enterprise', 'institution'];
const GRADES = [null, 'A', 'B', 'C', 'D'];

/** Line ends from keyboard-wedge scanners go; spaces stay (Base45 may end with one). */
export function cleanScan(text) {
  return text.replace(/^[\r\n]+|[\r\n]+$/g, '');
}

export function looksLikeToken(text) {
  return cleanScan(text).startsWith(PREFIX);
}

/** The claims of a token, without checking its signature. Throws TokenError('bad_format'). */
export function parse(text) {
  const clean = cleanScan(text);
  if (!clean.startsWith(PREFIX)) throw new TokenError('bad_format');
  const raw = base45decode(clean.slice(PREFIX.length));
  if (raw.length !== LENGTH || raw[0] !== 1) throw new TokenError('bad_format');
  const view = new DataView(raw.buffer);
  const flags = raw[11];
  const colour = COLOURS[flags & 3];
  const kind = KINDS[(flags >> 2) & 3];
  const gradeBits = (flags >> 4) & 7;
  if (!colour || !kind || gradeBits > 4 || (flags & 0x80)) throw new TokenError('bad_format');
  return {
    kid: view.getUint16(1),
    colour, kind, grade: GRADES[gradeBits],
    notBefore: view.getUint32(12),
    lifetime: view.getUint16(16),
    signed: raw.slice(0, SIGNED),
    signature: raw.slice(SIGNED),
  };
}

function base64url(text) {
  const b64 = text.replace(/-/g, '+').replace(/_/g, '/') + '==='.slice((text.length + 3) % 4);
  return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
}

/**
 * Verify signature, window and format against cached JWKs (GET /api/v1/keys), as the server would before
 * it looks at the ledger. Returns {valid, reason, claims}. It can never say "redeemed": that needs the
 * server (colour now, revocation, replay, quotas).
 */
export async function verifyOffline(text, jwks, nowSeconds = Date.now() / 1000) {
  let claims;
  try {
    claims = parse(text);
  } catch (e) {
    return { valid: false, reason: e.reason || 'bad_format', claims: null };
  }
  const jwk = (jwks || []).find((k) => k.kid === String(claims.kid) && k.kty === 'OKP' && k.crv === 'Ed25519'
    && (!k.verify_until || Date.parse(k.verify_until) / 1000 > nowSeconds));
  if (!jwk) return { valid: false, reason: 'unknown_key', claims };
  let ok = false;
  try {
    const key = await crypto.subtle.importKey('raw', base64url(jwk.x), { name: 'Ed25519' }, false, ['verify']);
    ok = await crypto.subtle.verify({ name: 'Ed25519' }, key, claims.signature, claims.signed);
  } catch {
    ok = false;
  }
  if (!ok) return { valid: false, reason: 'bad_signature', claims };
  const skew = server.skew_seconds;
  if (nowSeconds < claims.notBefore - skew) return { valid: false, reason: 'not_yet_valid', claims };
  if (nowSeconds >= claims.notBefore + claims.lifetime + skew) return { valid: false, reason: 'expired', claims };
  return { valid: true, reason: null, claims };
}
