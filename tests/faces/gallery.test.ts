import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { AppError } from '../../src/errors.js';
import { encodeDescriptor, type FaceGallery, type FaceModel } from '../../src/faces/gallery.js';
import { openGallery } from '../../src/faces/open.js';
import { PostgresGallery } from '../../src/faces/postgres-gallery.js';
import { GallerySnapshots } from '../../src/faces/snapshots.js';
import { SqliteGallery } from '../../src/faces/sqlite-gallery.js';
import { REPO_ROOT } from '../helpers/paths.js';
import { fakeDescriptor, fakeSha, postgresBackend, sqliteBackend, testDatabase, type Backend } from './backends.js';

const exec = promisify(execFile);
const MODEL: FaceModel = { name: 'face-api-ssd-resnet128', version: '1.7.15+test' };
const OTHER_MODEL: FaceModel = { name: 'face-api-ssd-resnet128', version: '2.0.0+test' };
const entry = (seed: number) => ({ descriptor: fakeDescriptor(seed), imageSha256: fakeSha(seed) });

function isAppError(code: string) {
  return (err: unknown) => err instanceof AppError && err.code === code;
}

let database: { url: string; stop: () => Promise<void> } | undefined;
after(async () => {
  await database?.stop();
});

const backends: [string, () => Promise<Backend>][] = [
  ['SQLite', async () => sqliteBackend()],
  [
    'PostgreSQL',
    async () => {
      database ??= await testDatabase();
      return postgresBackend(database.url);
    },
  ],
];

for (const [label, makeBackend] of backends) {
  describe(`face gallery on ${label}`, () => {
    let backend: Backend;
    const open: FaceGallery[] = [];
    const openOne = async (limits?: Parameters<Backend['open']>[0]) => {
      const g = await backend.open(limits);
      open.push(g);
      return g;
    };

    before(async () => {
      backend = await makeBackend();
    });
    after(async () => {
      await Promise.all(open.map((g) => g.close()));
      await backend?.destroy();
    });

    it('register adds photos to a user and never overwrites', async () => {
      const g = await openOne();
      const first = await g.add('alice', [entry(1)], MODEL);
      assert.deepEqual(first, { outcomes: ['added'], added: 1, duplicates: 0, userDescriptors: 1, newUser: true });
      const second = await g.add('alice', [entry(2), entry(3)], MODEL);
      assert.deepEqual(second, { outcomes: ['added', 'added'], added: 2, duplicates: 0, userDescriptors: 3, newUser: false });
      await g.add('bob', [entry(4)], MODEL);
      assert.deepEqual(await g.list(), [
        { userid: 'alice', descriptors: 3, byModel: { [`${MODEL.name}@${MODEL.version}`]: 3 } },
        { userid: 'bob', descriptors: 1, byModel: { [`${MODEL.name}@${MODEL.version}`]: 1 } },
      ]);
      assert.deepEqual(await g.count(), { users: 2, descriptors: 4 });
      const snap = await g.snapshot(MODEL);
      assert.deepEqual(snap.userids, ['alice', 'alice', 'alice', 'bob']);
      assert.deepEqual([...snap.vectors.subarray(128, 256)], [...fakeDescriptor(2)], 'descriptors come back bit for bit');
    });

    it('the same photo is not stored twice for a user, within a call or across calls', async () => {
      const g = await openOne();
      const before = await g.generation();
      const again = await g.add('alice', [entry(1), entry(5), entry(5)], MODEL);
      assert.deepEqual(again.outcomes, ['duplicate', 'added', 'duplicate']);
      assert.equal(again.userDescriptors, 4);
      assert.equal(await g.generation(), before + 1);
      const noop = await g.add('alice', [entry(5)], MODEL);
      assert.deepEqual([noop.added, noop.duplicates], [0, 1]);
      assert.equal(await g.generation(), before + 1, 'a call that adds nothing changes nothing');
      // The same photo under another user, or from another model, is a different descriptor.
      assert.equal((await g.add('carol', [entry(5)], MODEL)).added, 1);
      assert.equal((await g.add('alice', [entry(5)], OTHER_MODEL)).added, 1);
      assert.equal(await backend.rowsFor('alice'), 5);
    });

    it('snapshots hold one model only; list counts per model', async () => {
      const g = await openOne();
      const other = await g.snapshot(OTHER_MODEL);
      assert.deepEqual(other.userids, ['alice']);
      assert.deepEqual([...other.vectors], [...fakeDescriptor(5)]);
      const users = await g.list();
      assert.deepEqual(users.find((u) => u.userid === 'alice')?.byModel, { [`${MODEL.name}@${MODEL.version}`]: 4, [`${OTHER_MODEL.name}@${OTHER_MODEL.version}`]: 1 });
      assert.equal((await g.snapshot({ name: 'nothing', version: '0' })).userids.length, 0);
    });

    it('two galleries on one store see each other\'s writes; snapshots reload only after a change', async () => {
      const a = await openOne();
      const b = await openOne();
      const cache = new GallerySnapshots(b);
      const s1 = await cache.current(MODEL);
      assert.equal(await cache.current(MODEL), s1, 'unchanged gallery: the same snapshot object');
      await a.add('dave', [entry(6)], MODEL);
      const s2 = await cache.current(MODEL);
      assert.notEqual(s2, s1);
      assert.ok(s2.userids.includes('dave'), 'a write through another gallery is seen');
      assert.equal(s2.userids.length, s1.userids.length + 1);
      await b.delete('dave');
      assert.ok(!(await a.snapshot(MODEL)).userids.includes('dave'));
    });

    it('delete removes every descriptor of the user, and the rows are gone', async () => {
      const g = await openOne();
      assert.equal(await backend.rowsFor('bob'), 1);
      const gen = await g.generation();
      assert.equal(await g.delete('bob'), 1);
      assert.equal(await backend.rowsFor('bob'), 0);
      assert.equal(await g.generation(), gen + 1);
      assert.ok(!(await g.list()).some((u) => u.userid === 'bob'));
      assert.equal(await g.delete('bob'), 0, 'deleting an unknown user removes nothing');
      assert.equal(await g.generation(), gen + 1);
    });

    it('the gallery survives closing and reopening (the migration runs again as a no-op)', async () => {
      const g = await openOne();
      const beforeList = await g.list();
      const beforeSnap = await g.snapshot(MODEL);
      await g.close();
      const reopened = await openOne();
      assert.deepEqual(await reopened.list(), beforeList);
      const snap = await reopened.snapshot(MODEL);
      assert.deepEqual(snap.userids, beforeSnap.userids);
      assert.deepEqual([...snap.vectors], [...beforeSnap.vectors]);
      assert.equal(snap.generation, beforeSnap.generation);
    });

    it('limits: users in the gallery and photos per user, checked in the transaction (nothing half-stored)', async () => {
      const g = await openOne({ maxUsers: 3, maxDescriptorsPerUser: 5 });
      const { users } = await g.count(); // alice and carol
      assert.equal(users, 2);
      await g.add('erin', [entry(7)], MODEL);
      await assert.rejects(g.add('frank', [entry(8)], MODEL), (err: unknown) => isAppError('GALLERY_FULL')(err) && (err as AppError).status === 409);
      assert.equal(await backend.rowsFor('frank'), 0);
      // An existing user may still add, up to the per-user limit; an add passing it stores none of its photos.
      assert.equal((await g.add('erin', [entry(9), entry(10)], MODEL)).userDescriptors, 3);
      await assert.rejects(g.add('erin', [entry(11), entry(12), entry(13)], MODEL), isAppError('GALLERY_FULL'));
      assert.equal(await backend.rowsFor('erin'), 3);
      assert.equal((await g.add('erin', [entry(11), entry(12)], MODEL)).userDescriptors, 5);
    });

    it('rejects bad userids and malformed descriptors before touching the store', async () => {
      const g = await openOne();
      for (const bad of ['', '   ', 'a\u0000b', 'x'.repeat(257)]) await assert.rejects(g.add(bad, [entry(1)], MODEL), isAppError('BAD_PARAMETER'));
      await assert.rejects(g.add('ok', [{ descriptor: new Float32Array(127), imageSha256: fakeSha(1) }], MODEL), isAppError('INTERNAL'));
      await assert.rejects(g.add('ok', [{ descriptor: new Float32Array(128).fill(Number.NaN), imageSha256: fakeSha(1) }], MODEL), isAppError('INTERNAL'));
      await assert.rejects(g.add('ok', [{ descriptor: fakeDescriptor(1), imageSha256: 'not-a-hash' }], MODEL), isAppError('INTERNAL'));
      await assert.rejects(g.delete(''), isAppError('BAD_PARAMETER'));
      assert.equal(await backend.rowsFor('ok'), 0);
      // Any other text is a valid userid, stored and listed as given.
      await g.add('Zoë O\'Brien; DROP TABLE x', [entry(20)], MODEL);
      assert.ok((await g.list()).some((u) => u.userid === 'Zoë O\'Brien; DROP TABLE x'));
      await g.delete('Zoë O\'Brien; DROP TABLE x');
    });

    it('refuses a store whose schema is newer than this code', async () => {
      await backend.exec('UPDATE face_meta SET schema_version = 99 WHERE id = 1');
      try {
        await assert.rejects(backend.open(), (err: unknown) => isAppError('GALLERY_UNAVAILABLE')(err) && /newer/.test((err as AppError).detail ?? ''));
      } finally {
        await backend.exec('UPDATE face_meta SET schema_version = 1 WHERE id = 1');
      }
      await (await openOne()).count();
    });
  });
}

describe('face gallery on SQLite: the file itself', () => {
  const backend = sqliteBackend();
  after(() => backend.destroy());

  it('a deleted user leaves no descriptor, userid or photo hash in the database file (secure_delete, no WAL)', async () => {
    const g = (await backend.open()) as SqliteGallery;
    const userid = 'unmistakable-user-7f3a';
    const entries = [entry(101), entry(102), entry(103)];
    await g.add(userid, entries, MODEL);
    await g.add('someone-else', [entry(104)], MODEL);
    const bytes = () => readFileSync(g.file);
    const traces = (file: Buffer) => ({
      descriptors: entries.filter((e) => file.includes(encodeDescriptor(e.descriptor))).length,
      userid: file.includes(Buffer.from(userid)),
      hashes: entries.filter((e) => file.includes(Buffer.from(e.imageSha256))).length,
    });
    assert.deepEqual(traces(bytes()), { descriptors: 3, userid: true, hashes: 3 }, 'stored: the check can see them');
    assert.equal(await g.delete(userid), 3);
    assert.deepEqual(traces(bytes()), { descriptors: 0, userid: false, hashes: 0 }, 'deleted: no trace left in the file');
    assert.ok(bytes().includes(encodeDescriptor(entry(104).descriptor)), 'other users are untouched');
    for (const suffix of ['-wal', '-journal', '-shm']) assert.ok(!existsSync(g.file + suffix), `no ${suffix} file kept`);
    await g.close();
  });
});

describe('face gallery on SQLite: concurrency and the data directory', () => {
  it('several processes opening one new file at once all migrate and write (BEGIN IMMEDIATE, busy timeout)', async () => {
    const backend = sqliteBackend();
    try {
      const first = (await backend.open()) as SqliteGallery;
      const dir = path.dirname(first.file);
      await first.close();
      const file = path.join(dir, 'concurrent', 'faces.sqlite');
      const script = path.join(REPO_ROOT, 'tests', 'faces', 'fixtures', 'open-sqlite.ts');
      const runs = await Promise.all([1, 2, 3, 4].map((seed) => exec(process.execPath, ['--import', 'tsx', script, file, String(seed)], { cwd: REPO_ROOT, timeout: 60_000 })));
      assert.deepEqual(runs.map((r) => r.stdout), ['ok', 'ok', 'ok', 'ok']);
      const g = new SqliteGallery({ file });
      assert.deepEqual(await g.count(), { users: 4, descriptors: 4 });
      await g.close();
    } finally {
      await backend.destroy();
    }
  });

  it('openGallery without a database URL puts faces.sqlite in the data directory (created if missing)', async () => {
    const backend = sqliteBackend();
    const g = (await backend.open()) as SqliteGallery;
    const dataDir = path.join(path.dirname(g.file), 'nested', 'data');
    await g.close();
    try {
      const opened = await openGallery({ dataDir, databaseUrl: '', limits: { maxUsers: 10, maxDescriptorsPerUser: 10 } });
      assert.equal(opened.backend, 'sqlite');
      assert.equal((opened as SqliteGallery).file, path.resolve(dataDir, 'faces.sqlite'));
      await opened.close();
      assert.ok(existsSync(path.join(dataDir, 'faces.sqlite')));
    } finally {
      await backend.destroy();
    }
  });
});

describe('face gallery on PostgreSQL: migration under concurrency', () => {
  it('many processes\' first opens of one new schema at once all succeed (advisory lock)', async () => {
    database ??= await testDatabase();
    const backend = postgresBackend(database.url);
    try {
      const galleries = await Promise.all(Array.from({ length: 6 }, () => backend.open()));
      await Promise.all(galleries.map((g, i) => g.add(`user-${i}`, [entry(200 + i)], MODEL)));
      assert.deepEqual(await galleries[0]!.count(), { users: 6, descriptors: 6 });
      // Concurrent writers are serialized: the user limit holds across galleries.
      await Promise.all(galleries.map((g) => g.close()));
      const limited = await Promise.all(Array.from({ length: 4 }, () => backend.open({ maxUsers: 8, maxDescriptorsPerUser: 10 })));
      const results = await Promise.allSettled(limited.map((g, i) => g.add(`late-${i}`, [entry(300 + i)], MODEL)));
      assert.equal(results.filter((r) => r.status === 'fulfilled').length, 2, 'exactly two new users fit under maxUsers 8');
      assert.equal((await limited[0]!.count()).users, 8);
      await Promise.all(limited.map((g) => g.close()));
    } finally {
      await backend.destroy();
    }
  });

  it('openGallery with a database URL opens PostgreSQL; an unreachable server is GALLERY_UNAVAILABLE', async () => {
    database ??= await testDatabase();
    const g = await openGallery({ dataDir: '/nonexistent', databaseUrl: database.url, limits: { maxUsers: 10, maxDescriptorsPerUser: 10 } });
    assert.ok(g instanceof PostgresGallery);
    await g.count();
    await g.close();
    await assert.rejects(
      openGallery({ dataDir: '/nonexistent', databaseUrl: 'postgres://nobody@127.0.0.1:1/none', limits: { maxUsers: 10, maxDescriptorsPerUser: 10 } }),
      isAppError('GALLERY_UNAVAILABLE'),
    );
  });
});
