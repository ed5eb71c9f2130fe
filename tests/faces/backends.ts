import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import type { FaceGallery, GalleryLimits } from '../../src/faces/gallery.js';
import { PostgresGallery } from '../../src/faces/postgres-gallery.js';
import { SqliteGallery } from '../../src/faces/sqlite-gallery.js';
import { REPO_ROOT } from '../helpers/paths.js';

const exec = promisify(execFile);

/**
 * The PostgreSQL the gallery tests run against: CVSERVE_TEST_DATABASE_URL (CI sets it from
 * .ci/postgres.sh). Unset under CI that is a failure, not a skip; unset elsewhere a throwaway
 * cluster is started with the same script and stopped afterwards.
 */
export async function testDatabase(): Promise<{ url: string; stop: () => Promise<void> }> {
  const given = process.env.CVSERVE_TEST_DATABASE_URL;
  if (given) return { url: given, stop: async () => {} };
  if (process.env.CI) throw new Error('CVSERVE_TEST_DATABASE_URL is not set: .ci/run must source .ci/postgres.sh');
  const script = path.join(REPO_ROOT, '.ci', 'postgres.sh');
  const { stdout } = await exec('bash', [script, 'start'], { timeout: 120_000 });
  const env = Object.fromEntries([...stdout.matchAll(/^export (\w+)=(.*)$/gm)].map((m) => [m[1]!, m[2]!]));
  const url = env.CVSERVE_TEST_DATABASE_URL;
  const dir = env.CVSERVE_TEST_PG_DIR;
  if (!url || !dir) throw new Error(`.ci/postgres.sh printed no URL: ${stdout}`);
  return { url, stop: async () => void (await exec('bash', [script, 'stop', dir], { timeout: 60_000 })) };
}

/** One backend under test: how to open galleries on one shared store, and how to look at it directly. */
export interface Backend {
  name: 'sqlite' | 'postgres';
  /** Opens another gallery on the same store (same file / same schema). */
  open(limits?: GalleryLimits): Promise<FaceGallery>;
  /** Rows in face_descriptors for a userid, counted by the database itself. */
  rowsFor(userid: string): Promise<number>;
  /** Runs SQL directly against the store (tests that tamper with the schema). */
  exec(sql: string): Promise<void>;
  /** Removes the store. */
  destroy(): Promise<void>;
}

export function sqliteBackend(): Backend {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'cvserve-faces-'));
  const file = path.join(dir, 'faces.sqlite');
  const direct = async <T>(work: (db: import('better-sqlite3').Database) => T): Promise<T> => {
    const { default: Database } = await import('better-sqlite3');
    const db = new Database(file);
    try {
      return work(db);
    } finally {
      db.close();
    }
  };
  return {
    name: 'sqlite',
    open: async (limits) => new SqliteGallery({ file, limits }),
    rowsFor: (userid) => direct((db) => (db.prepare('SELECT COUNT(*) AS n FROM face_descriptors WHERE userid = ?').get(userid) as { n: number }).n),
    exec: (sql) => direct((db) => void db.exec(sql)),
    destroy: async () => rmSync(dir, { recursive: true, force: true }),
  };
}

export function postgresBackend(url: string): Backend {
  const schema = `cvserve_t_${randomBytes(5).toString('hex')}`;
  const direct = async <T>(work: (c: pg.Client) => Promise<T>): Promise<T> => {
    const client = new pg.Client({ connectionString: url, options: `-c search_path=${schema}` });
    await client.connect();
    try {
      return await work(client);
    } finally {
      await client.end();
    }
  };
  return {
    name: 'postgres',
    open: (limits) => PostgresGallery.open({ url, schema, limits }),
    rowsFor: (userid) => direct(async (c) => Number((await c.query('SELECT COUNT(*) AS n FROM face_descriptors WHERE userid = $1', [userid])).rows[0].n)),
    exec: (sql) => direct(async (c) => void (await c.query(sql))),
    destroy: () => direct(async (c) => void (await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`))),
  };
}

/** A deterministic pseudo-random descriptor (unit length, like the model's). */
export function fakeDescriptor(seed: number): Float32Array {
  let s = (seed * 0x9e3779b9) >>> 0 || 1;
  const out = new Float32Array(128);
  let norm = 0;
  for (let i = 0; i < out.length; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    out[i] = s / 2 ** 32 - 0.5;
    norm += out[i]! * out[i]!;
  }
  for (let i = 0; i < out.length; i++) out[i]! /= Math.sqrt(norm);
  return out;
}

export function fakeSha(seed: number): string {
  return seed.toString(16).padStart(64, 'a');
}
