/**
 * A gallery that heals by itself: after an outage of its database (SQLite: a data directory whose
 * journal cannot be written; PostgreSQL: the connection cut by a proxy on loopback), register,
 * list, delete and match answer again as soon as the database does, with no recognize in between
 * (before, one failed call locked the DeepStack gallery routes at 503 until a recognize). While it
 * is down: 503 with Retry-After, match still answers; a full disk is told as such (507).
 */
import assert from 'node:assert/strict';
import { mkdirSync, rmdirSync, statSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type Database from 'better-sqlite3';
import sharp from 'sharp';
import request from 'supertest';
import type { CvServe } from '../../src/app.js';
import type { FaceGallery } from '../../src/faces/gallery.js';
import { galleryFile, openGallery } from '../../src/faces/open.js';
import { brief } from '../helpers/http.js';
import { cropAround, faceTestConfig, PHOTO, postgresStore, SharedEngines, sqliteStore, stopTestServer, type Store } from './harness.js';

const engines = new SharedEngines();
let crops: Buffer[];
const stores: Store[] = [];
const apps: CvServe[] = [];

before(async () => {
  const { data, info } = await sharp(PHOTO).raw().toBuffer({ resolveWithObject: true });
  const boxes = (await engines.base.face.detect({ data, width: info.width, height: info.height, channels: 3 })).map((f) => f.box);
  crops = await Promise.all(boxes.slice(0, 3).map((b) => cropAround(b)));
});

after(async () => {
  await Promise.all(apps.map((a) => a.close()));
  await Promise.all(stores.map((s) => s.destroy()));
  await engines.close();
  await stopTestServer();
});

/** An app on `store` whose face service reads the clock `clock.now` (the fast-fail window is timed by it). */
async function appOn(store: Store, clock: { now: number }, openGalleryWith?: () => Promise<FaceGallery>): Promise<CvServe> {
  const svc = await engines.app(faceTestConfig(store.settings), { faces: { now: () => clock.now, ...(openGalleryWith && { openGallery: openGalleryWith }) } });
  apps.push(svc);
  return svc;
}

const register = (svc: CvServe, userid: string, photo: Buffer) => request(svc.app).post('/v1/vision/face/register').field('userid', userid).attach('image', photo, 'p.jpg');
const list = (svc: CvServe) => request(svc.app).post('/v1/vision/face/list');
const remove = (svc: CvServe, userid: string) => request(svc.app).post('/v1/vision/face/delete').field('userid', userid);
const match = (svc: CvServe) => request(svc.app).post('/v1/vision/face/match').attach('image1', crops[0]!, 'a.jpg').attach('image2', crops[1]!, 'b.jpg');

function expectDown(res: request.Response): void {
  assert.equal(res.status, 503, brief(res));
  assert.match(res.body.error, /face gallery/i);
  assert.match(String(res.headers['retry-after']), /^[1-9]\d*$/, 'Retry-After in whole seconds');
}

/** After the outage: every gallery route answers again, no recognize needed. */
async function expectHealed(svc: CvServe): Promise<void> {
  const added = await register(svc, 'bob', crops[2]!);
  assert.equal(added.status, 200, brief(added));
  const users = await list(svc);
  assert.equal(users.status, 200, brief(users));
  assert.deepEqual(users.body.faces, ['alice', 'bob']);
  const deleted = await remove(svc, 'alice');
  assert.deepEqual([deleted.status, deleted.body.deleted], [200, 1], brief(deleted));
  assert.equal((await match(svc)).status, 200);
  assert.deepEqual((await list(svc)).body.faces, ['bob']);
}

describe('a gallery that heals itself', () => {
  it('SQLite: a data directory that cannot be written (503, Retry-After; match still answers), then can: register/list/delete/match answer again', async () => {
    const store = sqliteStore();
    stores.push(store);
    const clock = { now: 0 };
    const svc = await appOn(store, clock);
    assert.equal((await register(svc, 'alice', crops[0]!)).status, 200);
    assert.equal(statSync(galleryFile(store.settings.dataDir)).mode & 0o777, 0o600, 'faces.sqlite is created owner-only');

    // The journal's path taken by a directory: SQLite can neither write nor read (disk I/O error).
    const journal = `${galleryFile(store.settings.dataDir)}-journal`;
    mkdirSync(journal);
    expectDown(await register(svc, 'bob', crops[2]!));
    expectDown(await list(svc));
    assert.equal((await match(svc)).status, 200, 'match needs no database');
    clock.now += 60_000;
    expectDown(await list(svc)); // tried again after the window, still down
    rmdirSync(journal);

    const early = await list(svc);
    assert.equal(early.status, 503, 'within the fast-fail window the database is not tried');
    clock.now += 2000; // the window is at most retryMs (2 s)
    await expectHealed(svc);
  });

  it('PostgreSQL: connections cut and refused (503), then let through: register/list/delete/match answer again', async () => {
    const store = await postgresStore();
    stores.push(store);
    const proxy = await TcpProxy.to(new URL(store.settings.databaseUrl));
    try {
      const url = new URL(store.settings.databaseUrl);
      url.port = String(proxy.port);
      const clock = { now: 0 };
      const svc = await appOn({ ...store, settings: { ...store.settings, databaseUrl: url.toString() } }, clock);
      assert.equal((await register(svc, 'alice', crops[0]!)).status, 200);

      proxy.down();
      expectDown(await register(svc, 'bob', crops[2]!));
      clock.now += 60_000;
      expectDown(await list(svc));
      clock.now += 60_000;
      expectDown(await remove(svc, 'alice'));
      assert.equal((await match(svc)).status, 200, 'match needs no database');

      proxy.up();
      clock.now += 2000;
      await expectHealed(svc);
    } finally {
      await proxy.close();
    }
  });

  it('SQLite: a full disk answers 507 saying so, nothing is stored, and other calls are not held up', async () => {
    const store = sqliteStore();
    stores.push(store);
    let gallery: FaceGallery | undefined;
    const svc = await appOn(store, { now: 0 }, async () => {
      gallery = await openGallery({ ...store.settings, limits: { maxUsers: 100, maxDescriptorsPerUser: 10 } });
      return gallery;
    });
    assert.equal((await register(svc, 'alice', crops[0]!)).status, 200);
    // SQLite's own "database or disk is full": no page may be added to the file.
    const db = (gallery as unknown as { db: Database.Database }).db;
    db.pragma(`max_page_count = ${db.pragma('page_count', { simple: true })}`);
    let full: request.Response | undefined;
    for (let i = 1; i <= 40 && full?.status !== 507; i++) full = await register(svc, `user-${i}`, crops[i % 3]!);
    assert.equal(full!.status, 507, brief(full!));
    assert.match(full!.body.error, /disk is full/);
    assert.equal((await list(svc)).status, 200, 'a full disk does not mark the gallery down');
    db.pragma('max_page_count = 1073741823');
    assert.equal((await register(svc, 'bob', crops[2]!)).status, 200);
    assert.ok(path.isAbsolute(galleryFile(store.settings.dataDir)));
  });
});

/** A TCP proxy on loopback that can cut every connection and refuse new ones (an outage), then let them through again. */
class TcpProxy {
  private readonly sockets = new Set<net.Socket>();
  private isDown = false;
  private constructor(
    private readonly server: net.Server,
    readonly port: number,
  ) {}

  static async to(target: URL): Promise<TcpProxy> {
    let proxy!: TcpProxy;
    const server = net.createServer((client) => {
      if (proxy.isDown) return void client.destroy();
      const upstream = net.connect(Number(target.port || 5432), target.hostname);
      for (const s of [client, upstream]) {
        proxy.sockets.add(s);
        s.on('close', () => proxy.sockets.delete(s));
        s.on('error', () => {});
      }
      client.pipe(upstream).pipe(client);
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    proxy = new TcpProxy(server, (server.address() as net.AddressInfo).port);
    return proxy;
  }

  down(): void {
    this.isDown = true;
    for (const s of this.sockets) s.destroy();
  }

  up(): void {
    this.isDown = false;
  }

  async close(): Promise<void> {
    this.down();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
