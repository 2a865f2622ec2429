// Vite 7 config of the demo page. `npx vite build www` (scripts/start) builds www/dist, which
// `ykeep-relay serve --static-dir www/dist` serves at `/`.
// The `ykeep` client package is the wasm build in ../pkg (scripts/build-wasm). When pkg/ has not
// been built, the page still runs against the relay (live sync, durability from /durable) and
// says in every pane that the client module is missing.
import { existsSync, readFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { defineConfig } from 'vite'

const here = dirname(fileURLToPath(import.meta.url))
const pkgDir = resolve(here, '../pkg')

function ykeepEntry () {
  const manifest = join(pkgDir, 'package.json')
  if (!existsSync(manifest)) return null
  const pkg = JSON.parse(readFileSync(manifest, 'utf8'))
  const entry = pkg.module || pkg.main || 'ykeep.js'
  const file = join(pkgDir, entry)
  return existsSync(file) ? file : null
}

const entry = ykeepEntry()
if (!entry) console.warn('[www] pkg/ is not built: the demo runs without the ykeep client (run scripts/build-wasm)')

export default defineConfig({
  root: here,
  base: './',
  resolve: {
    alias: { ykeep: entry || resolve(here, 'src/ykeep-missing.js') },
    // One copy of yjs for the page, y-websocket, y-codemirror.next and the client.
    dedupe: ['yjs', 'lib0', 'y-protocols', '@codemirror/state', '@codemirror/view']
  },
  server: { host: '127.0.0.1', fs: { allow: [resolve(here, '..')] } },
  preview: { host: '127.0.0.1' },
  build: { outDir: resolve(here, 'dist'), emptyOutDir: true, target: 'es2022', chunkSizeWarningLimit: 2000 }
})
