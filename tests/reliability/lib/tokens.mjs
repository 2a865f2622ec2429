// User tokens as the contract defines them (docs/store-api.md):
// base64url(JSON {sub, kind, id, exp}) "." base64url(HMAC-SHA256(key, first segment)).
import crypto from 'node:crypto'

export function mintToken (key, { sub = 'tester', kind, id, expInSeconds = 3600 }) {
  const payload = Buffer.from(JSON.stringify({ sub, kind, id, exp: Math.floor(Date.now() / 1000) + expInSeconds })).toString('base64url')
  const sig = crypto.createHmac('sha256', key).update(payload).digest('base64url')
  return `${payload}.${sig}`
}

export function verifyToken (key, token, kind, id) {
  const no = (reason) => ({ allowed: false, userId: null, reason })
  if (typeof token !== 'string' || token.split('.').length !== 2) return no('malformed')
  const [payload, sig] = token.split('.')
  const want = crypto.createHmac('sha256', key).update(payload).digest('base64url')
  if (sig.length !== want.length || !crypto.timingSafeEqual(Buffer.from(sig), Buffer.from(want))) return no('bad_signature')
  let claims
  try { claims = JSON.parse(Buffer.from(payload, 'base64url').toString()) } catch { return no('malformed') }
  if (!(claims.exp > Date.now() / 1000)) return no('expired')
  if ((claims.kind !== '*' && claims.kind !== kind) || (claims.id !== '*' && claims.id !== id)) return no('wrong_resource')
  return { allowed: true, userId: claims.sub }
}
