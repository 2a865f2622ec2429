// Seeded PRNG (mulberry32): every reliability run prints its seed and replays from it.
export function makeRng (seed) {
  let a = seed >>> 0
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  return {
    next,
    int: (lo, hi) => lo + Math.floor(next() * (hi - lo + 1)), // inclusive
    pick: (arr) => arr[Math.floor(next() * arr.length)],
    chance: (p) => next() < p
  }
}

/** The seed from env YKEEP_SEED (or an argument), else a fresh one. Always printed by callers. */
export function chooseSeed (given) {
  const raw = given ?? process.env.YKEEP_SEED
  if (raw !== undefined && raw !== '') return Number(raw) >>> 0
  return (Date.now() ^ (process.pid << 16)) >>> 0
}
