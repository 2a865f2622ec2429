// The room's durable log in the Durable Object's own SQLite storage.
//
// One row per part of a record: a Durable Object row holds at most 2 MB, and a compacted
// record (the full state) can be larger. Records keep their commit order by id. Everything one
// step writes goes in one `transactionSync`, and workerd's output gate holds the step's outgoing
// messages until that write is durable (see docs/party.md, "Nothing leaves before it is durable").
import { LogRecords } from "./wasm.js";

/** Parts are at most this large (the platform's limit is 2 MB a row). */
const PART_BYTES = 1 << 20;

export interface Append {
  seq: number;
  format: number;
  data: Uint8Array;
}

export interface Compact {
  savedSeq: number;
  snapshotId: string;
  marker: Uint8Array;
  savedAt: number;
  compacted: Uint8Array;
  keep: number[];
}

/** `format` of a compacted record (ykeep_room::record_format::SNAPSHOT). */
const SNAPSHOT = 2;

type Row = Record<string, SqlStorageValue>;

export class Log {
  #storage: DurableObjectStorage;
  #sql: SqlStorage;
  #nextId: number;

  constructor(storage: DurableObjectStorage) {
    this.#storage = storage;
    this.#sql = storage.sql;
    this.#sql.exec(`CREATE TABLE IF NOT EXISTS ykeep_log (
      id INTEGER NOT NULL, part INTEGER NOT NULL, seq INTEGER NOT NULL, format INTEGER NOT NULL,
      data BLOB NOT NULL, PRIMARY KEY (id, part))`);
    this.#sql.exec(`CREATE TABLE IF NOT EXISTS ykeep_saved (
      one INTEGER PRIMARY KEY CHECK (one = 1), saved_seq INTEGER NOT NULL,
      snapshot_id TEXT NOT NULL, marker BLOB NOT NULL, saved_at INTEGER NOT NULL)`);
    // A deleted resource's log: moved here, never into nothing (exported or dropped by an
    // operator, never by the host).
    this.#sql.exec(`CREATE TABLE IF NOT EXISTS ykeep_quarantine (
      at INTEGER NOT NULL, reason TEXT NOT NULL, id INTEGER NOT NULL, part INTEGER NOT NULL,
      seq INTEGER NOT NULL, format INTEGER NOT NULL, data BLOB NOT NULL)`);
    const top = this.#sql.exec("SELECT COALESCE(MAX(id), 0) AS id FROM ykeep_log").one();
    this.#nextId = Number(top.id) + 1;
  }

  /** Everything the log holds, for the room. */
  read(): LogRecords {
    const saved = this.#sql.exec("SELECT * FROM ykeep_saved").toArray()[0] as Row | undefined;
    const top = this.#sql.exec("SELECT COALESCE(MAX(seq), 0) AS seq FROM ykeep_log").one();
    const savedSeq = saved ? Number(saved.saved_seq) : 0;
    const records = new LogRecords(
      Math.max(Number(top.seq), savedSeq),
      savedSeq,
      saved ? String(saved.snapshot_id) : undefined,
      saved ? new Uint8Array(saved.marker as ArrayBuffer) : undefined,
      saved ? Number(saved.saved_at) : undefined,
    );
    let current: { id: number; format: number; parts: Uint8Array[] } | undefined;
    const push = () => {
      if (current) records.push(current.id, current.format, concat(current.parts));
    };
    for (const row of this.#sql.exec("SELECT id, format, data FROM ykeep_log ORDER BY id, part")) {
      const id = Number(row.id);
      if (current?.id !== id) {
        push();
        current = { id, format: Number(row.format), parts: [] };
      }
      current.parts.push(new Uint8Array(row.data as ArrayBuffer));
    }
    push();
    return records;
  }

  /** Whether the log holds anything at all. */
  isEmpty(): boolean {
    return this.#sql.exec("SELECT 1 FROM ykeep_log LIMIT 1").toArray().length === 0;
  }

  /** One step's writes, in one transaction: the append, then the save it records (if any). */
  write(append: Append | undefined, compact: Compact | undefined): void {
    this.#storage.transactionSync(() => {
      if (append) this.#insert(this.#nextId++, append.seq, append.format, append.data);
      if (compact) this.#compact(compact);
    });
  }

  /**
   * Replaces what the save held, records up to its sequence number, by the saved state;
   * records the room could not read (`keep`) stay, and so does everything logged after.
   */
  #compact(c: Compact): void {
    const keep = JSON.stringify(c.keep);
    const first = this.#sql
      .exec(
        `SELECT MIN(id) AS id FROM ykeep_log WHERE seq <= ? AND id NOT IN (SELECT value FROM json_each(?))`,
        c.savedSeq,
        keep,
      )
      .one();
    const id = first.id === null ? this.#nextId++ : Number(first.id);
    this.#sql.exec(
      `DELETE FROM ykeep_log WHERE seq <= ? AND id NOT IN (SELECT value FROM json_each(?))`,
      c.savedSeq,
      keep,
    );
    this.#insert(id, c.savedSeq, SNAPSHOT, c.compacted);
    this.#sql.exec(
      `INSERT INTO ykeep_saved (one, saved_seq, snapshot_id, marker, saved_at) VALUES (1, ?, ?, ?, ?)
       ON CONFLICT (one) DO UPDATE SET saved_seq = excluded.saved_seq,
         snapshot_id = excluded.snapshot_id, marker = excluded.marker, saved_at = excluded.saved_at`,
      c.savedSeq,
      c.snapshotId,
      buffer(c.marker),
      c.savedAt,
    );
  }

  /** The store said the resource was deleted: the whole log moves to the quarantine. */
  quarantine(reason: string, at: number): number {
    let moved = 0;
    this.#storage.transactionSync(() => {
      moved = Number(this.#sql.exec("SELECT COUNT(DISTINCT id) AS n FROM ykeep_log").one().n);
      this.#sql.exec(
        `INSERT INTO ykeep_quarantine SELECT ?, ?, id, part, seq, format, data FROM ykeep_log`,
        at,
        reason,
      );
      this.#sql.exec("DELETE FROM ykeep_log");
      this.#sql.exec("DELETE FROM ykeep_saved");
    });
    return moved;
  }

  #insert(id: number, seq: number, format: number, data: Uint8Array): void {
    for (let part = 0, at = 0; at < data.length || part === 0; part++, at += PART_BYTES) {
      const chunk = data.subarray(at, Math.min(at + PART_BYTES, data.length));
      this.#sql.exec(
        "INSERT INTO ykeep_log (id, part, seq, format, data) VALUES (?, ?, ?, ?, ?)",
        id,
        part,
        seq,
        format,
        buffer(chunk),
      );
    }
  }
}

function concat(parts: Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** The bytes as an ArrayBuffer of their own (what SQLite binds as a BLOB). */
function buffer(bytes: Uint8Array): ArrayBuffer {
  const whole = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength;
  return (whole ? bytes.buffer : bytes.slice().buffer) as ArrayBuffer;
}
