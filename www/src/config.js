// Where the page finds the relay and the store, and which room set it opens.
//   default: the relay and the embedded store on the page's own origin (`ykeep-relay serve`);
//   ?relay=http://127.0.0.1:9000&store=http://127.0.0.1:9001&token=...  override them
//   #<room set>  the room set (the three rooms are document/<set>, diagram/<set>, task/<set>).
const ID = /^[A-Za-z0-9_-]{1,128}$/

export function readConfig (loc = window.location) {
  const q = new URLSearchParams(loc.search)
  const origin = loc.protocol.startsWith('http') ? loc.origin : 'http://127.0.0.1:8787'
  const relayUrl = (q.get('relay') || origin).replace(/\/+$/, '')
  const storeParam = q.get('store')
  // The store's load route needs a user token; without one the page does not ask the store
  // directly (the relay still cold-starts rooms from it).
  const token = q.get('token') || undefined
  const storeUrl = storeParam === '' ? undefined : (storeParam || relayUrl).replace(/\/+$/, '')
  const set = decodeURIComponent(loc.hash.replace(/^#/, ''))
  return {
    relayUrl,
    wsUrl: relayUrl.replace(/^http/, 'ws'),
    storeUrl: token ? storeUrl : undefined,
    storeUrlIgnored: token ? undefined : storeUrl,
    token,
    set: ID.test(set) ? set : null,
    user: localUser()
  }
}

/**
 * Under `ykeep-relay serve --demo` the relay hands out a demo token so the page can load from
 * the store directly, as an app with its own auth would. Elsewhere there is no such route.
 */
export async function withDemoToken (config) {
  if (config.token || !config.storeUrlIgnored) return config
  try {
    const res = await fetch(`${config.relayUrl}/demo/token`)
    if (!res.ok) return config
    const { token } = await res.json()
    if (typeof token !== 'string') return config
    return { ...config, token, storeUrl: config.storeUrlIgnored, storeUrlIgnored: undefined }
  } catch {
    return config
  }
}

export function validSet (name) {
  return ID.test(name)
}

export function randomSet () {
  const bytes = crypto.getRandomValues(new Uint8Array(4))
  return 'room-' + Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')
}

const COLORS = ['#d0021b', '#0a7a38', '#0b3f86', '#8a4baf', '#b35c00', '#00838f']

/** A name and colour for this window's cursor, kept for the tab's session. */
function localUser () {
  let name = sessionStorage.getItem('ykeep-demo-user')
  if (!name) {
    name = `user-${Math.floor(Math.random() * 9000 + 1000)}`
    sessionStorage.setItem('ykeep-demo-user', name)
  }
  const color = COLORS[Number(name.slice(5)) % COLORS.length]
  return { name, color, colorLight: color + '33' }
}
