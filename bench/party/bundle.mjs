// Bundles bench/party/yserver-worker.ts (y-partyserver baseline) with esbuild into one ES module
// under target/bench-party/ (gitignored), as in ../shared/notes/party-runtime.md.
//   node bench/party/bundle.mjs            prints the output path
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const here = path.dirname(fileURLToPath(import.meta.url));
export const ROOT = path.resolve(here, '../..');

export async function bundleYServer(outDir = path.join(ROOT, 'target/bench-party/yserver')) {
  const outfile = path.join(outDir, 'worker.mjs');
  await esbuild.build({
    entryPoints: [path.join(here, 'yserver-worker.ts')],
    outfile,
    bundle: true,
    format: 'esm',
    platform: 'neutral',
    target: 'es2022',
    conditions: ['workerd', 'worker', 'import'],
    mainFields: ['module', 'main'],
    external: ['cloudflare:*', 'node:*'],
    logLevel: 'warning',
    absWorkingDir: ROOT,
  });
  return outfile;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  console.log(await bundleYServer());
}
