import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import pg from 'pg';
import { loadConfig } from '../../src/config.js';
import { faceServiceOptions } from '../../src/faces/service.js';
import { SqliteGallery } from '../../src/faces/sqlite-gallery.js';
import { postgresBackend, testDatabase } from './backends.js';

/**
 * The README's "What is stored, and where": per registered photo the userid, the 512-byte
 * descriptor, the photo's sha256, the model's name and version, and the time. Never the photo: the
 * tables have exactly these columns and the descriptor column takes 512 bytes and nothing else.
 * The data directory is created with mode 0700. CVSERVE_FACE_MATCH_THRESHOLD reaches the service.
 */

const COLUMNS = ['id', 'userid', 'model_name', 'model_version', 'image_sha256', 'descriptor', 'created_at'];

describe('the SQLite gallery stores no photo, in a 0700 directory', () => {
  let dir: string;
  let gallery: SqliteGallery;
  before(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'cvserve-stored-'));
    gallery = new SqliteGallery({ file: path.join(dir, 'data', 'faces.sqlite') });
  });
  after(async () => {
    await gallery?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('creates its directory with mode 0700', () => {
    assert.equal((statSync(path.join(dir, 'data')).mode & 0o777).toString(8), '700');
  });

  it('has exactly the columns the README lists, and a descriptor column that holds 512 bytes only', () => {
    const db = new Database(gallery.file);
    try {
      const tables = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as { name: string }[]).map((t) => t.name);
      assert.deepEqual(tables, ['face_descriptors', 'face_meta']);
      const columns = (db.prepare('PRAGMA table_info(face_descriptors)').all() as { name: string }[]).map((c) => c.name);
      assert.deepEqual(columns, COLUMNS);
      const meta = (db.prepare('PRAGMA table_info(face_meta)').all() as { name: string }[]).map((c) => c.name);
      assert.ok(meta.every((c) => !/image|photo|bytes/.test(c)), meta.join(','));
      const insert = db.prepare('INSERT INTO face_descriptors (userid, model_name, model_version, image_sha256, descriptor) VALUES (?, ?, ?, ?, ?)');
      assert.throws(() => insert.run('u', 'm', '1', 'a'.repeat(64), Buffer.alloc(513)), /CHECK constraint failed/);
      assert.throws(() => insert.run('u', 'm', '1', 'a'.repeat(64), Buffer.alloc(40_000)), /CHECK constraint failed/, 'a photo does not fit');
      insert.run('u', 'm', '1', 'a'.repeat(64), Buffer.alloc(512));
    } finally {
      db.close();
    }
  });
});

describe('the PostgreSQL gallery stores no photo', () => {
  let database: Awaited<ReturnType<typeof testDatabase>>;
  let backend: ReturnType<typeof postgresBackend>;
  before(async () => {
    database = await testDatabase();
    backend = postgresBackend(database.url);
    await (await backend.open()).close();
  });
  after(async () => {
    await backend?.destroy();
    await database?.stop();
  });

  it('has exactly the columns the README lists, and a descriptor column that holds 512 bytes only', async () => {
    const client = new pg.Client({ connectionString: database.url });
    await client.connect();
    try {
      const schema = (await client.query<{ table_schema: string }>("SELECT table_schema FROM information_schema.tables WHERE table_name = 'face_descriptors' AND table_schema LIKE 'cvserve_t_%' ORDER BY table_schema")).rows;
      assert.ok(schema.length > 0, 'the test schema exists');
      const columnsOf = async (table: string) =>
        (await client.query<{ column_name: string }>('SELECT column_name FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position', [schema.at(-1)!.table_schema, table])).rows.map((r) => r.column_name);
      // Another test process may have its own schema: compare against every one, they are all cvserve's.
      for (const { table_schema } of schema) {
        const cols = (await client.query<{ column_name: string }>('SELECT column_name FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position', [table_schema, 'face_descriptors'])).rows.map((r) => r.column_name);
        assert.deepEqual(cols, COLUMNS, table_schema);
      }
      const meta = await columnsOf('face_meta');
      assert.ok(meta.length > 0 && meta.every((c) => !/image|photo|bytes/.test(c)), meta.join(','));
    } finally {
      await client.end();
    }
    await assert.rejects(backend.exec(`INSERT INTO face_descriptors (userid, model_name, model_version, image_sha256, descriptor) VALUES ('u', 'm', '1', '${'a'.repeat(64)}', '\\x${'00'.repeat(513)}')`), /check constraint/i);
  });
});

describe('CVSERVE_FACE_MATCH_THRESHOLD', () => {
  it('reaches the face service (the distance that maps to confidence 0.67)', () => {
    const engine = undefined as never; // not used by the wiring
    assert.equal(faceServiceOptions(loadConfig({ CVSERVE_FACE_MATCH_THRESHOLD: '0.6' }), engine).threshold, 0.6);
    assert.equal(faceServiceOptions(loadConfig({}), engine).threshold, 0.58);
  });
});
