// Runs every shared contract case (tests/contract/*.json, format in
// tests/contract/README.md) against the example app (ykeep mounted under /ykeep, with the
// app's own fields and `authorize` hook) under convex-test, through t.fetch. Symbolic
// resource names become the `_id`s of rows the app's own mutation creates.
import { convexTest } from "convex-test";
import { afterEach, beforeEach, describe, expect, test, vi } from "vitest";
import * as Y from "yjs";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import schema from "./schema";
import { modules } from "./test.setup";
import { internal } from "./_generated/api";
import { mintToken } from "ykeep/convex";
import { PREFIX } from "./test.helpers";

export const SECRET = "contract-test-secret";
export const TOKEN_KEY = "contract-test-token-key";
/** The contract runners' snapshot limit (tests/contract/README.md, "Runner settings"). */
const MAX_SNAPSHOT_BYTES = 4096;

const CASE_DIR = process.env.YKEEP_CONTRACT_DIR ?? join(process.cwd(), "tests", "contract");

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type Case = {
  name: string;
  resources?: Record<string, "document" | "diagram" | "task">;
  tokens?: Record<string, TokenSpec>;
  steps: Step[];
};
type Step = {
  request: {
    method: string;
    path: string;
    auth?: "secret" | "wrong" | "none" | { token: TokenSpec } | { raw: string };
    headers?: Record<string, string>;
    body?: BodySpec;
  };
  expect: {
    status: number;
    errorCode?: string | null;
    json?: Json;
    headers?: Record<string, string>;
    loadText?: string | null;
  };
  capture?: Record<string, string>;
};
type TokenSpec = { sub?: string; kind: string; id: string; expInSeconds: number };
type BodySpec =
  | { yjs: string | string[]; client?: number }
  | { yjsFrom: string; append?: string; deleteFirst?: number }
  | { base64: string }
  | { utf8: string }
  | { zeros: number }
  | { json: Json };

type Vars = Map<string, string | Uint8Array>;

function loadCases(dir: string): { file: string; c: Case }[] {
  if (!existsSync(dir)) return [];
  const files = readdirSync(dir)
    .filter((f) => f.endsWith(".json"))
    .sort();
  return files.map((file) => ({ file, c: JSON.parse(readFileSync(join(dir, file), "utf8")) as Case }));
}

function subst(text: string, vars: Vars): string {
  return text.replace(/\{([A-Za-z0-9_-]+)\}/g, (whole, name: string) => {
    const v = vars.get(name);
    return typeof v === "string" ? v : whole;
  });
}

function substJson(value: Json, vars: Vars): Json {
  if (typeof value === "string") return subst(value, vars);
  if (Array.isArray(value)) return value.map((v) => substJson(v, vars));
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, substJson(v, vars)]));
  }
  return value;
}

let nextClient = 1000;

function textOf(update: Uint8Array): string {
  const doc = new Y.Doc();
  Y.applyUpdate(doc, update);
  return doc.getText("t").toString();
}

function buildBody(spec: BodySpec, vars: Vars): { body: BodyInit; contentType: string } {
  if ("yjs" in spec) {
    const doc = new Y.Doc();
    doc.clientID = spec.client ?? 1;
    const t = doc.getText("t");
    for (const s of Array.isArray(spec.yjs) ? spec.yjs : [spec.yjs]) {
      doc.transact(() => t.insert(t.length, s));
    }
    return { body: Y.encodeStateAsUpdate(doc) as Uint8Array<ArrayBuffer>, contentType: "application/octet-stream" };
  }
  if ("yjsFrom" in spec) {
    const from = vars.get(spec.yjsFrom);
    if (!(from instanceof Uint8Array)) throw new Error(`yjsFrom: no captured bytes named ${spec.yjsFrom}`);
    const doc = new Y.Doc();
    Y.applyUpdate(doc, from);
    doc.clientID = nextClient++;
    const t = doc.getText("t");
    if (spec.append !== undefined) doc.transact(() => t.insert(t.length, spec.append!));
    if (spec.deleteFirst !== undefined) doc.transact(() => t.delete(0, spec.deleteFirst!));
    return { body: Y.encodeStateAsUpdate(doc) as Uint8Array<ArrayBuffer>, contentType: "application/octet-stream" };
  }
  if ("base64" in spec) {
    const bin = atob(spec.base64);
    return { body: Uint8Array.from(bin, (c) => c.charCodeAt(0)), contentType: "application/octet-stream" };
  }
  if ("utf8" in spec) return { body: new TextEncoder().encode(spec.utf8), contentType: "application/octet-stream" };
  if ("zeros" in spec) return { body: new Uint8Array(spec.zeros), contentType: "application/octet-stream" };
  if ("json" in spec) return { body: JSON.stringify(substJson(spec.json, vars)), contentType: "application/json" };
  throw new Error(`unknown body spec ${JSON.stringify(spec)}`);
}

async function mint(tok: TokenSpec, vars: Vars): Promise<string> {
  return mintToken(TOKEN_KEY, {
    sub: tok.sub ?? "u1",
    kind: subst(tok.kind, vars),
    id: subst(tok.id, vars),
    exp: Math.floor(Date.now() / 1000) + tok.expInSeconds,
  });
}

async function authHeader(auth: Step["request"]["auth"], vars: Vars): Promise<string | null> {
  if (auth === undefined || auth === "none") return null;
  if (auth === "secret") return `Bearer ${SECRET}`;
  if (auth === "wrong") return "Bearer not-the-secret";
  if ("raw" in auth) return subst(auth.raw, vars);
  return `Bearer ${await mint(auth.token, vars)}`;
}

/** Subset match with the `$number`/`$string`/`$present`/`$null` matchers; returns a mismatch or null. */
function mismatch(expected: Json, actual: unknown, at: string): string | null {
  if (expected === "$number") return typeof actual === "number" ? null : `${at}: expected a number, got ${JSON.stringify(actual)}`;
  if (expected === "$string") return typeof actual === "string" ? null : `${at}: expected a string, got ${JSON.stringify(actual)}`;
  if (expected === "$present") return actual !== undefined ? null : `${at}: expected present, got nothing`;
  if (expected === "$null") return actual === null ? null : `${at}: expected null, got ${JSON.stringify(actual)}`;
  if (expected !== null && typeof expected === "object" && !Array.isArray(expected)) {
    if (actual === null || typeof actual !== "object" || Array.isArray(actual)) {
      return `${at}: expected an object, got ${JSON.stringify(actual)}`;
    }
    for (const [k, v] of Object.entries(expected)) {
      const m = mismatch(v, (actual as Record<string, unknown>)[k], `${at}.${k}`);
      if (m) return m;
    }
    return null;
  }
  if (Array.isArray(expected)) {
    if (!Array.isArray(actual) || actual.length !== expected.length) {
      return `${at}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`;
    }
    for (let i = 0; i < expected.length; i++) {
      const m = mismatch(expected[i], actual[i], `${at}[${i}]`);
      if (m) return m;
    }
    return null;
  }
  return expected === actual ? null : `${at}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`;
}

function parseJson(bytes: Uint8Array): unknown {
  try {
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    return undefined;
  }
}

const FREE_TEXT = ["description", "comment", "notes"];
const KNOWN_KEYS: Record<string, string[]> = {
  case: ["name", "resources", "tokens", "steps"],
  step: ["request", "expect", "capture"],
  request: ["method", "path", "auth", "headers", "body"],
  expect: ["status", "errorCode", "json", "headers", "loadText"],
};

/** A field this runner does not know fails the case instead of being silently ignored. */
function checkKnownFields(c: Case) {
  const check = (what: string, obj: object, where: string) => {
    for (const k of Object.keys(obj)) {
      if (!KNOWN_KEYS[what].includes(k) && !FREE_TEXT.includes(k)) {
        throw new Error(`${where}: the Convex runner does not know the ${what} field "${k}" (tests/contract/README.md format)`);
      }
    }
  };
  check("case", c, `case "${c.name}"`);
  c.steps.forEach((s, i) => {
    const where = `case "${c.name}", step ${i + 1}`;
    check("step", s, where);
    check("request", s.request, where);
    check("expect", s.expect, where);
  });
}

async function runCase(c: Case) {
  checkKnownFields(c);
  const t = convexTest(schema, modules);
  const vars: Vars = new Map();
  for (const [name, kind] of Object.entries(c.resources ?? {})) {
    vars.set(name, await t.mutation(internal.app.createResource, { kind }));
  }
  for (const [name, tok] of Object.entries(c.tokens ?? {})) vars.set(name, await mint(tok, vars));
  for (const [i, step] of c.steps.entries()) {
    const where = `case "${c.name}", step ${i + 1} (${step.request.method} ${step.request.path})`;
    const fail = (what: string) => {
      throw new Error(`${where}: ${what}`);
    };
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(step.request.headers ?? {})) headers[k] = subst(v, vars);
    const auth = await authHeader(step.request.auth, vars);
    if (auth !== null) headers["Authorization"] = auth;
    let body: BodyInit | undefined;
    if (step.request.body !== undefined) {
      const b = buildBody(step.request.body, vars);
      body = b.body;
      if (!Object.keys(headers).some((k) => k.toLowerCase() === "content-type")) headers["Content-Type"] = b.contentType;
    }
    const res = await t.fetch(PREFIX + subst(step.request.path, vars), { method: step.request.method, headers, body });
    const bytes = new Uint8Array(await res.arrayBuffer());
    const json = parseJson(bytes);
    const ex = step.expect;
    if (res.status !== ex.status) {
      fail(`status ${res.status}, expected ${ex.status}; body ${new TextDecoder().decode(bytes).slice(0, 300)}`);
    }
    if (ex.errorCode !== undefined) {
      const code = (json as { error?: { code?: unknown } } | undefined)?.error?.code ?? null;
      if (code !== ex.errorCode) fail(`error code ${JSON.stringify(code)}, expected ${JSON.stringify(ex.errorCode)}`);
      if (code !== null && typeof (json as { error: { message?: unknown } }).error.message !== "string") {
        fail("error body has no message");
      }
    }
    if (ex.json !== undefined) {
      if (json === undefined) fail("expected a JSON body");
      const m = mismatch(substJson(ex.json, vars), json, "json");
      if (m) fail(m);
    }
    for (const [name, want] of Object.entries(ex.headers ?? {})) {
      const got = res.headers.get(name);
      const m = mismatch(subst(want, vars), got === null ? undefined : got, `header ${name}`);
      if (m) fail(m);
    }
    if (ex.loadText !== undefined) {
      const path = subst(step.request.path, vars).replace(/[?#].*$/, "");
      const m = /^\/snapshots\/[^/]+\/[^/]+$/.exec(path);
      if (!m) fail("loadText needs a /snapshots/{kind}/{id} path");
      const load = await t.fetch(PREFIX + path, { headers: { Authorization: `Bearer ${SECRET}` } });
      const loaded = new Uint8Array(await load.arrayBuffer());
      if (ex.loadText === null) {
        if (load.status !== 404) fail(`load after the step: status ${load.status}, expected 404`);
      } else {
        if (load.status !== 200) fail(`load after the step: status ${load.status}, expected 200`);
        const text = textOf(loaded);
        if (text !== ex.loadText) fail(`load after the step: text ${JSON.stringify(text)}, expected ${JSON.stringify(ex.loadText)}`);
      }
    }
    for (const [name, from] of Object.entries(step.capture ?? {})) {
      if (from === "body") {
        vars.set(name, bytes);
      } else if (from.startsWith("json.")) {
        let v: unknown = json;
        for (const part of from.slice(5).split(".")) v = (v as Record<string, unknown> | undefined)?.[part];
        if (typeof v !== "string" && typeof v !== "number") fail(`capture ${name}: ${from} is missing`);
        vars.set(name, String(v));
      } else if (from.startsWith("header.")) {
        const h = res.headers.get(from.slice(7));
        if (h === null) fail(`capture ${name}: header ${from.slice(7)} is missing`);
        vars.set(name, h!.replace(/^W\//, "").replace(/^"(.*)"$/, "$1"));
      } else {
        fail(`capture ${name}: unknown source ${from}`);
      }
    }
  }
  // As the Rust runner checks blob files: file storage holds exactly the blobs that rows
  // point at (an overwritten, refused or deleted blob is really gone).
  const { pointed, stored } = await t.run(async (ctx) => {
    const pointed: string[] = [];
    for (const table of ["documents", "diagrams", "tasks"] as const) {
      for (const row of await ctx.db.query(table).collect()) {
        if (row.yjsSnapshotId !== undefined) pointed.push(row.yjsSnapshotId);
      }
    }
    const stored = (await ctx.db.system.query("_storage").collect()).map((b) => b._id as string);
    return { pointed: pointed.sort(), stored: stored.sort() };
  });
  if (JSON.stringify(pointed) !== JSON.stringify(stored)) {
    throw new Error(`case "${c.name}": after the steps, storage holds ${JSON.stringify(stored)} but rows point at ${JSON.stringify(pointed)}`);
  }
}

function suite(title: string, dir: string) {
  describe(title, () => {
    beforeEach(() => {
      vi.stubEnv("YKEEP_SECRET", SECRET);
      vi.stubEnv("YKEEP_TOKEN_KEY", TOKEN_KEY);
      // Runner settings of tests/contract/README.md.
      vi.stubEnv("YKEEP_MAX_SNAPSHOT_BYTES", String(MAX_SNAPSHOT_BYTES));
    });
    afterEach(() => {
      vi.unstubAllEnvs();
    });

    const cases = loadCases(dir);
    test(`case files exist in ${dir}`, () => {
      expect(cases.length, `no contract cases (*.json) in ${dir}`).toBeGreaterThan(0);
    });
    for (const { file, c } of cases) {
      test(`${file}: ${c.name}`, { timeout: 60_000 }, async () => {
        await runCase(c);
      });
    }
  });
}

suite("store contract cases on Convex", CASE_DIR);
