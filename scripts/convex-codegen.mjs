#!/usr/bin/env node
// Offline `npx convex codegen`: writes (or, with --check, verifies) convex/_generated/.
//
//   node scripts/convex-codegen.mjs            regenerate <dir>/_generated/
//   node scripts/convex-codegen.mjs --check    exit 1 if the committed files drift
//   node scripts/convex-codegen.mjs --dir path functions directory (default: the CLI's
//                                              own choice, convex.json "functions" or convex/)
//
// `npx convex codegen` needs a deployment: it bundles the functions, pushes them
// (startPush) and writes the files from the push's analysis. For an app without
// convex.config.ts and without `codegen.staticApi`/`staticDataModel` in convex.json, the
// only thing the analysis contributes is "no child components, no declared env vars";
// everything else comes from the local files. So this script runs the CLI's *own* code
// for both codegen phases -- doInitialComponentCodegen and doFinalComponentCodegen from
// src/cli/lib/codegen.ts, exactly as runCodegen -> startComponentsPushAndCodegen calls
// them (src/cli/lib/components.ts) -- with that analysis filled in, against a
// filesystem overlay that keeps every write in memory. The module list is the CLI's
// entryPoints() (src/bundler/index.ts), formatting is the CLI's writeFormattedFile()
// (prettier.format(contents, { parser, pluginSearchDirs: false }), with the prettier
// the CLI itself resolves), stale-file cleanup is cleanupStaleGeneratedEntries().
//
// Those functions come from node_modules/convex/dist/cli.bundle.cjs, the file `npx
// convex` runs (bin/main.js imports it). The unbundled dist/esm/cli/ files hold the same
// code but cannot be imported here: they import packages that only exist inside the
// bundle (chalk, @sentry/node, @babel/parser, ora, zod, ...). The bundle ends with
// `void main();`; we evaluate it with that line replaced by an export of the functions
// we need, so nothing of the CLI's command line runs.
import Module, { createRequire } from "node:module";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const PROJECT_ROOT = path.resolve(fileURLToPath(new URL("..", import.meta.url)));
const EXPECTED_CONVEX_VERSION = "1.48.0";

class UsageError extends Error {}

function fail(message, code = 2) {
  process.stderr.write(`convex-codegen: error: ${message}\n`);
  process.exit(code);
}

function parseArgs(argv) {
  const opts = { check: false, dir: null };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--check") opts.check = true;
    else if (a === "--dir") {
      if (i + 1 >= argv.length) throw new UsageError("--dir needs a path");
      opts.dir = argv[++i];
    } else if (a.startsWith("--dir=")) opts.dir = a.slice("--dir=".length);
    else if (a === "-h" || a === "--help") {
      process.stdout.write("usage: node scripts/convex-codegen.mjs [--check] [--dir <functions dir>]\n");
      process.exit(0);
    } else throw new UsageError(`unknown argument ${JSON.stringify(a)} (usage: [--check] [--dir <functions dir>])`);
  }
  if (opts.dir === "") throw new UsageError("--dir needs a path");
  return opts;
}

// ---- the CLI's own functions, from the bundle `npx convex` runs ----

const CLI_FUNCTIONS = [
  "entryPoints",
  "compareModulePaths",
  "readProjectConfig",
  "functionsDir",
  "isComponentDirectory",
  "doInitialComponentCodegen",
  "doFinalComponentCodegen",
  "version",
];

function loadConvexCli() {
  const require = createRequire(path.join(PROJECT_ROOT, "package.json"));
  let pkgPath;
  try {
    pkgPath = require.resolve("convex/package.json");
  } catch {
    throw new UsageError(`node_modules/convex not found from ${PROJECT_ROOT} (run npm install)`);
  }
  const convexDir = path.dirname(pkgPath);
  const installed = JSON.parse(fs.readFileSync(pkgPath, "utf8")).version;
  const bundlePath = path.join(convexDir, "dist", "cli.bundle.cjs");
  if (!fs.existsSync(bundlePath)) throw new UsageError(`${bundlePath} missing: is convex ${installed} installed completely?`);
  const source = fs.readFileSync(bundlePath, "utf8");
  const marker = "\nvoid main();\n";
  const at = source.lastIndexOf(marker);
  if (at === -1 || source.indexOf(marker) !== at) {
    throw new UsageError(
      `convex ${installed}: ${bundlePath} does not end its CLI with a single \`void main();\`; ` +
        `this script was written against convex ${EXPECTED_CONVEX_VERSION} and needs updating`,
    );
  }
  const exportsLine = `\nmodule.exports = { ${CLI_FUNCTIONS.map((n) => `${n}: typeof ${n} === "undefined" ? undefined : ${n}`).join(", ")} };\n`;
  const patched = source.slice(0, at) + exportsLine + source.slice(at + marker.length);
  const mod = new Module(bundlePath);
  mod.filename = bundlePath;
  mod.paths = Module._nodeModulePaths(path.dirname(bundlePath));
  mod._compile(patched, bundlePath);
  const cli = mod.exports;
  const missing = CLI_FUNCTIONS.filter((n) => cli[n] === undefined);
  if (missing.length) {
    throw new UsageError(
      `convex ${installed}: the CLI bundle has no ${missing.join(", ")}; ` +
        `this script was written against convex ${EXPECTED_CONVEX_VERSION} and needs updating`,
    );
  }
  return cli;
}

// ---- a filesystem that reads the disk and keeps writes in memory ----
// Implements the parts of the CLI's Filesystem interface (src/bundler/fs.ts) that
// codegen uses. Paths are resolved against the cwd like the CLI's NodeFs does.

function enoent(p) {
  const err = new Error(`ENOENT: no such file or directory, '${p}'`);
  err.code = "ENOENT";
  return err;
}

const fakeStat = (isDir, size = 0) => ({ isFile: () => !isDir, isDirectory: () => isDir, size });
const fakeDirent = (name, isDir) => ({ name, isFile: () => !isDir, isDirectory: () => isDir });

class OverlayFs {
  files = new Map(); // abs path -> contents, or null when deleted
  dirs = new Map(); // abs path -> true when created, null when deleted
  tmp = new Map(); // fake tmp path -> contents (the CLI writes a tmp file, then swaps it in)

  #entry(p) {
    const a = path.resolve(p);
    if (this.files.has(a)) return this.files.get(a) === null ? { kind: "none" } : { kind: "file", a };
    if (this.dirs.has(a)) return this.dirs.get(a) === null ? { kind: "none" } : { kind: "dir", a };
    return { kind: "disk", a };
  }
  exists(p) {
    const e = this.#entry(p);
    return e.kind === "disk" ? fs.existsSync(e.a) : e.kind !== "none";
  }
  stat(p) {
    const e = this.#entry(p);
    if (e.kind === "none") throw enoent(p);
    if (e.kind === "file") return fakeStat(false, Buffer.byteLength(this.files.get(e.a)));
    if (e.kind === "dir") return fakeStat(true);
    return fs.statSync(e.a);
  }
  access(p) {
    if (!this.exists(p)) throw enoent(p);
  }
  readUtf8File(p) {
    const e = this.#entry(p);
    if (e.kind === "none" || e.kind === "dir") throw enoent(p);
    if (e.kind === "file") return this.files.get(e.a);
    return fs.readFileSync(e.a, { encoding: "utf-8" });
  }
  listDir(p) {
    const e = this.#entry(p);
    if (e.kind === "none" || e.kind === "file") throw enoent(p);
    const out = new Map();
    if (e.kind === "disk") for (const d of fs.readdirSync(e.a, { withFileTypes: true })) out.set(d.name, d);
    for (const [map, isDir] of [
      [this.files, false],
      [this.dirs, true],
    ]) {
      for (const [child, v] of map) {
        if (path.dirname(child) !== e.a) continue;
        const name = path.basename(child);
        if (v === null) out.delete(name);
        else out.set(name, fakeDirent(name, isDir));
      }
    }
    return [...out.values()];
  }
  writeUtf8File(p, contents) {
    this.files.set(path.resolve(p), contents);
  }
  mkdir(p, options) {
    if (this.exists(p)) {
      if (options?.allowExisting) return;
      const err = new Error(`EEXIST: file already exists, mkdir '${p}'`);
      err.code = "EEXIST";
      throw err;
    }
    let a = path.resolve(p);
    const created = [];
    while (!this.exists(a)) {
      created.push(a);
      if (!options?.recursive) break;
      a = path.dirname(a);
    }
    if (!this.exists(path.dirname(created.at(-1)))) throw enoent(p);
    for (const d of created) this.dirs.set(d, true);
  }
  unlink(p) {
    if (!this.exists(p)) throw enoent(p);
    this.files.set(path.resolve(p), null);
  }
  rmdir(p) {
    if (!this.exists(p)) throw enoent(p);
    if (this.listDir(p).length) throw new Error(`ENOTEMPTY: directory not empty, rmdir '${p}'`);
    this.dirs.set(path.resolve(p), null);
  }
  swapTmpFile(from, to) {
    if (!this.tmp.has(from)) throw enoent(from);
    this.files.set(path.resolve(to), this.tmp.get(from));
    this.tmp.delete(from);
  }
  registerPath() {}
  invalidate() {}

  tmpDir() {
    let n = 0;
    return {
      path: "<memory>",
      writeUtf8File: (contents) => {
        const p = `<memory>/${n++}`;
        this.tmp.set(p, contents);
        return p;
      },
      registerTempPath: () => `<memory>/${n++}`,
    };
  }

  // What the run changed relative to the disk, as a sorted list.
  changes() {
    const out = [];
    for (const [a, contents] of this.files) {
      const onDisk = fs.existsSync(a) && fs.statSync(a).isFile() ? fs.readFileSync(a, "utf8") : null;
      if (contents === null) {
        if (onDisk !== null || fs.existsSync(a)) out.push({ path: a, kind: "extra", old: onDisk });
      } else if (onDisk === null) out.push({ path: a, kind: "missing", new: contents });
      else if (onDisk !== contents) out.push({ path: a, kind: "differs", old: onDisk, new: contents });
    }
    for (const [a, v] of this.dirs) {
      if (v === null && fs.existsSync(a)) out.push({ path: a, kind: "extra-dir" });
      if (v === true && !fs.existsSync(a)) out.push({ path: a, kind: "mkdir" });
    }
    return out.sort((x, y) => (x.path < y.path ? -1 : x.path > y.path ? 1 : 0));
  }
}

function makeCtx(overlay) {
  return {
    fs: overlay,
    deprecationMessagePrinted: false,
    registerCleanup: () => "cleanup",
    removeCleanup: () => null,
    // The CLI's ctx.crash prints and exits; here it becomes an exception with its message.
    crash: async (args) => {
      throw new UsageError(args.printedMessage ?? `${args.errorType ?? "fatal"} error in the convex CLI`);
    },
  };
}

// ---- the run ----

async function generate(cli, functionsDirArg) {
  const overlay = new OverlayFs();
  const ctx = makeCtx(overlay);
  const { projectConfig, configPath } = await cli.readProjectConfig(ctx);
  // runCodegen: functionsDir(configPath, projectConfig), unless --dir was given.
  const functionsDir = functionsDirArg ?? cli.functionsDir(configPath, projectConfig);
  if (!fs.existsSync(functionsDir)) throw new UsageError(`no such directory: ${functionsDir}`);
  if (!fs.statSync(functionsDir).isDirectory()) throw new UsageError(`not a directory: ${functionsDir}`);

  const isComponent = cli.isComponentDirectory(ctx, functionsDir, true);
  if (isComponent.kind === "err") throw new UsageError(`invalid component root directory (${isComponent.why}): ${functionsDir}`);
  const rootComponent = isComponent.component;
  if (!rootComponent.isRootWithoutConfig) {
    throw new UsageError(
      `${rootComponent.definitionPath} exists: its child components and env vars come from a deployment's ` +
        `analysis, which this offline codegen cannot reproduce; run \`npx convex codegen\` instead`,
    );
  }
  for (const key of ["staticApi", "staticDataModel"]) {
    if (projectConfig.codegen?.[key]) {
      throw new UsageError(
        `${configPath} sets codegen.${key}: that output is built from a deployment's analysis; run \`npx convex codegen\` instead`,
      );
    }
  }

  // The options runCodegen passes to startComponentsPushAndCodegen, minus the
  // deployment's (url, adminKey, ...). `--commonjs` is not offered here.
  const options = {
    dryRun: false,
    debug: false,
    typecheck: "disable",
    init: false,
    commonjs: false,
    generateCommonJSApi: false,
    verbose: false,
    codegen: true,
    liveComponentSources: false,
    typecheckComponents: false,
    debugNodeApis: false,
  };
  // What startPush answers for an app without convex.config.ts: the root ("" path,
  // toComponentDefinitionPath(root, root)) has no child components and no env vars.
  // functions/schema stay empty: only staticApi/staticDataModel (refused above) read them.
  const startPushResponse = {
    analysis: { "": { definition: { path: "", childComponents: [], envVars: [], exports: { type: "branch", branch: [] } }, functions: {} } },
  };
  const components = new Map([[rootComponent.path, rootComponent]]);
  const tmpDir = overlay.tmpDir();
  // startComponentsPushAndCodegen: initial codegen, then (after the push) final codegen.
  await cli.doInitialComponentCodegen(ctx, tmpDir, rootComponent, options);
  await cli.doFinalComponentCodegen(ctx, tmpDir, rootComponent, rootComponent, startPushResponse, components, options);

  // The module list the api files were built from (same call doApiCodegen makes).
  const modules = (await cli.entryPoints(ctx, rootComponent.path))
    .map((p) => path.relative(rootComponent.path, p))
    .sort(cli.compareModulePaths);
  return { overlay, functionsDir: rootComponent.path, modules };
}

function show(p) {
  const rel = path.relative(process.cwd(), p);
  return rel.startsWith("..") || path.isAbsolute(rel) ? p : rel;
}

// The first hunk where two texts differ, with a little context.
function firstHunk(oldText, newText, context = 3, maxLines = 40) {
  const a = oldText.split("\n");
  const b = newText.split("\n");
  let start = 0;
  while (start < a.length && start < b.length && a[start] === b[start]) start++;
  let endA = a.length;
  let endB = b.length;
  while (endA > start && endB > start && a[endA - 1] === b[endB - 1]) {
    endA--;
    endB--;
  }
  // Keep the hunk to the first differing region: stop at the first line both sides share
  // again after the start (so two separate edits show as the first one only).
  const bIndex = new Map();
  for (let j = endB - 1; j >= start; j--) bIndex.set(b[j], j);
  for (let i = start; i < endA; i++) {
    const j = bIndex.get(a[i]);
    if (j !== undefined && j >= start && a[i].trim() !== "") {
      endA = i;
      endB = j;
      break;
    }
  }
  if (endA === start && endB === start) endB = Math.min(b.length, start + 1);
  const ctxStart = Math.max(0, start - context);
  let after = 0;
  while (after < context && endA + after < a.length && endB + after < b.length && a[endA + after] === b[endB + after]) after++;
  const lines = [];
  lines.push(`@@ -${ctxStart + 1},${endA - ctxStart + after} +${ctxStart + 1},${endB - ctxStart + after} @@`);
  for (let i = ctxStart; i < start; i++) lines.push(` ${a[i]}`);
  const removed = a.slice(start, endA).map((l) => `-${l}`);
  const added = b.slice(start, endB).map((l) => `+${l}`);
  const clip = (ls) => (ls.length > maxLines ? [...ls.slice(0, maxLines), `  ... ${ls.length - maxLines} more lines`] : ls);
  lines.push(...clip(removed), ...clip(added));
  for (let i = endA; i < endA + after; i++) lines.push(` ${a[i]}`);
  return lines.join("\n");
}

// Modules the committed api.d.ts / api.ts imports (`import type * as x from "../x.js"`).
function committedModules(functionsDir) {
  for (const name of ["api.d.ts", "api.ts"]) {
    const p = path.join(functionsDir, "_generated", name);
    if (!fs.existsSync(p)) continue;
    const text = fs.readFileSync(p, "utf8");
    return [...text.matchAll(/^import type \* as \S+ from "\.\.\/(.+)\.js";$/gm)].map((m) => m[1]);
  }
  return null;
}

function importPathOf(modulePath) {
  const p = modulePath.replace(/\\/g, "/");
  const dot = p.lastIndexOf(".");
  return dot === -1 ? p : p.slice(0, dot);
}

function report(changes, functionsDir, modules) {
  const out = [];
  for (const c of changes) {
    if (c.kind === "missing") out.push(`--- ${show(c.path)}: missing (codegen writes ${c.new.split("\n").length} lines)`);
    else if (c.kind === "extra") out.push(`--- ${show(c.path)}: extra (codegen removes it)`);
    else if (c.kind === "extra-dir") out.push(`--- ${show(c.path)}/: extra directory (codegen removes it)`);
    else if (c.kind === "mkdir") out.push(`--- ${show(c.path)}/: missing directory`);
    else out.push(`--- ${show(c.path)} (committed)\n+++ ${show(c.path)} (generated)\n${firstHunk(c.old, c.new)}`);
  }
  const committed = committedModules(functionsDir);
  if (committed) {
    const now = modules.map(importPathOf);
    const added = now.filter((m) => !committed.includes(m));
    const removed = committed.filter((m) => !now.includes(m));
    if (added.length) out.push(`modules not in the committed api: ${added.join(", ")}`);
    if (removed.length) out.push(`modules in the committed api that no longer exist: ${removed.join(", ")}`);
  }
  return out.join("\n");
}

function apply(overlay, changes) {
  const dirs = changes.filter((c) => c.kind === "mkdir").sort((x, y) => x.path.length - y.path.length);
  for (const c of dirs) fs.mkdirSync(c.path, { recursive: true });
  for (const c of changes) {
    if (c.kind === "missing" || c.kind === "differs") fs.writeFileSync(c.path, c.new);
    else if (c.kind === "extra") fs.rmSync(c.path, { force: true });
  }
  const gone = changes.filter((c) => c.kind === "extra-dir").sort((x, y) => y.path.length - x.path.length);
  for (const c of gone) fs.rmSync(c.path, { recursive: true, force: true });
}

async function main() {
  let opts;
  try {
    opts = parseArgs(process.argv.slice(2));
  } catch (e) {
    fail(e.message);
  }
  const dirArg = opts.dir === null ? null : path.resolve(opts.dir);
  if (dirArg !== null && !fs.existsSync(dirArg)) fail(`no such directory: ${opts.dir}`);
  if (dirArg !== null && !fs.statSync(dirArg).isDirectory()) fail(`not a directory: ${opts.dir}`);
  // The CLI reads convex.json and package.json from the cwd: run from the project root.
  process.chdir(PROJECT_ROOT);
  let result;
  try {
    const cli = loadConvexCli();
    result = await generate(cli, dirArg);
  } catch (e) {
    if (e instanceof UsageError) fail(e.message);
    throw e;
  }
  const { overlay, functionsDir, modules } = result;
  const changes = overlay.changes();
  const gen = show(path.join(functionsDir, "_generated"));
  if (opts.check) {
    if (changes.length === 0) {
      process.stdout.write(`${gen} matches ${modules.length} modules\n`);
      return;
    }
    process.stdout.write(`${gen} is out of date (run node scripts/convex-codegen.mjs):\n${report(changes, functionsDir, modules)}\n`);
    process.exitCode = 1;
    return;
  }
  apply(overlay, changes);
  for (const c of changes) {
    const verb = { missing: "wrote", differs: "wrote", extra: "removed", "extra-dir": "removed", mkdir: "created" }[c.kind];
    process.stdout.write(`${verb} ${show(c.path)}${c.kind.endsWith("dir") ? "/" : ""}\n`);
  }
  process.stdout.write(
    changes.length ? `${gen} regenerated for ${modules.length} modules\n` : `${gen} already up to date (${modules.length} modules)\n`,
  );
}

await main();
