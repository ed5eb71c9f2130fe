/**
 * The face gallery through the DeepStack routes with a real client: node-red-contrib-deepstack's
 * own faceRegistration (files image0..N) and faceRecognition (got + form-data), against a server on
 * 127.0.0.1, with API keys as Node-RED sends them (api_key / admin_key form fields). Then two real
 * server processes on one PostgreSQL: registered through one, recognized through the other.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { startReplica, type ServerProcess } from '../../scripts/lib/server-process.js';
import type { FaceBox } from '../../src/engines/face/engine.js';
import { listen, type Listening } from '../helpers/http.js';
import { guardedEnv } from '../helpers/net.js';
import { image, MODELS_DIR, REPO_ROOT } from '../helpers/paths.js';
import { capturingLog, cropAround, faceTestConfig, nearest, PHOTO, postgresStore, SharedEngines, sqliteStore, stopTestServer, transformedPhoto, untransform, type Store } from './harness.js';

interface NodeRedServer {
  proto: string;
  host: string;
  port: number;
  version: string;
  credentials: { apiKey?: string; adminKey?: string };
  rejectUnauthorized: boolean;
}
interface Prediction {
  userid: string;
  confidence: number;
  x_min: number;
  y_min: number;
  x_max: number;
  y_max: number;
}
type DsAnswer = { success: boolean; predictions: Prediction[]; message?: string; error?: string; duration?: number; images?: { field: string; status: string }[] };
interface NodeRedDeepstack {
  faceRecognition(image: Buffer, server: NodeRedServer, confidence: number): Promise<DsAnswer>;
  faceRegistration(images: Buffer[], server: NodeRedServer, userid: string): Promise<DsAnswer>;
}
/** node-red-contrib-deepstack's client functions, as its nodes call them. */
const nodeRed = createRequire(import.meta.url)('node-red-contrib-deepstack/deepstack-integration.js') as NodeRedDeepstack;

const SCALE = 1.5;
const CAT = readFileSync(image('cat_small.jpg'));
const ASTRONAUT = readFileSync(path.join(REPO_ROOT, 'data/astronaut.jpg'));
const boxOf = (p: Prediction) => [p.x_min, p.y_min, p.x_max, p.y_max];
type HttpError = { response?: { statusCode: number; body: string } };

/** POST a urlencoded form to a DeepStack route, as Home Assistant and Double Take do for list/delete. */
async function dsForm(base: string, route: string, fields: Record<string, string>): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${base}/v1/vision/face/${route}`, { method: 'POST', body: new URLSearchParams(fields) });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

let boxes: FaceBox[];
let crops: Buffer[];
let transformed: Buffer;

/** Which original face each predicted face of the transformed photo is. */
function who(predictions: Prediction[]): number[] {
  return predictions.map((p) => {
    const [x, y] = untransform(boxOf(p), SCALE);
    return nearest(boxes, x, y).index;
  });
}

describe('node-red-contrib-deepstack faceRegistration / faceRecognition against cvserve', () => {
  const engines = new SharedEngines();
  let store: Store;
  let server: Listening;
  let nr: NodeRedServer;
  let close: () => Promise<void>;
  const captured = capturingLog();

  before(async () => {
    const { data, info } = await sharp(PHOTO).raw().toBuffer({ resolveWithObject: true });
    boxes = (await engines.base.face.detect({ data, width: info.width, height: info.height, channels: 3 })).map((f) => f.box);
    crops = await Promise.all(boxes.map((b) => cropAround(b)));
    transformed = await transformedPhoto(SCALE);
    store = sqliteStore();
    const svc = await engines.app(faceTestConfig({ ...store.settings, apiKeys: ['nr-key-1'], logLevel: 'debug' }), { log: captured.log });
    server = await listen(svc.handler);
    close = () => svc.close();
    nr = { proto: 'http', host: '127.0.0.1', port: server.port, version: 'v1', credentials: { apiKey: 'nr-key-1' }, rejectUnauthorized: false };
  });
  after(async () => {
    await server?.close();
    await close?.();
    await engines.close();
    await store?.destroy();
  });

  it('registers several photos of a person in one call (image0..N), and a later call adds to them', async () => {
    const photos = [crops[0]!, await sharp(crops[0]!).resize({ width: 150 }).jpeg().toBuffer(), await sharp(crops[0]!).flop().jpeg().toBuffer()];
    const first = await nodeRed.faceRegistration(photos, nr, 'alice');
    assert.equal(first.success, true);
    assert.equal(first.message, 'face added');
    assert.deepEqual(first.images?.map((i) => [i.field, i.status]), [['image0', 'added'], ['image1', 'added'], ['image2', 'added']]);
    const more = await nodeRed.faceRegistration([photos[0]!, await sharp(crops[0]!).modulate({ brightness: 1.2 }).jpeg().toBuffer()], nr, 'alice');
    assert.deepEqual(more.images?.map((i) => i.status), ['duplicate', 'added']);
    const list = await dsForm(server.url, 'list', { api_key: 'nr-key-1' });
    assert.deepEqual(list.body.users, [{ userid: 'alice', photos: 4 }], 'added, not overwritten');
    assert.equal(await store.rowsFor('alice'), 4);
  });

  it('says which file had no face; a call where none has one is a 400 "No face found in image"', async () => {
    const mixed = await nodeRed.faceRegistration([crops[1]!, CAT], nr, 'bob');
    assert.deepEqual(mixed.images?.map((i) => [i.field, i.status]), [['image0', 'added'], ['image1', 'no face']]);
    await assert.rejects(nodeRed.faceRegistration([CAT], nr, 'carol'), (err: HttpError) => {
      assert.equal(err.response?.statusCode, 400);
      assert.equal(JSON.parse(err.response!.body).error, 'No face found in image');
      return true;
    });
    assert.deepEqual((await dsForm(server.url, 'delete', { userid: 'bob', api_key: 'nr-key-1' })).body.success, true);
  });

  it('the 17 people of the photo, registered one by one, are each recognized as themselves in a flipped, rescaled copy', async (t) => {
    for (let i = 0; i < 17; i++) assert.equal((await nodeRed.faceRegistration([crops[i]!], nr, `person-${i}`)).success, true);
    const answer = await nodeRed.faceRecognition(transformed, nr, 0.67);
    assert.equal(answer.success, true);
    assert.equal(answer.predictions.length, 17);
    const ids = who(answer.predictions);
    // Person 0 is also alice (same face, registered first with four photos): either name is right for that face.
    answer.predictions.forEach((p, k) => {
      const expected = ids[k] === 0 ? ['alice', 'person-0'] : [`person-${ids[k]}`];
      assert.ok(expected.includes(p.userid), `face of person ${ids[k]} named ${p.userid}`);
    });
    assert.equal(new Set(ids).size, 17);
    const confidences = answer.predictions.map((p) => p.confidence);
    t.diagnostic(`Node-RED recognize, 17 users: confidence ${Math.min(...confidences).toFixed(3)}..${Math.max(...confidences).toFixed(3)}`);
  });

  it('a stranger is "unknown", and a photo without a face answers success with no predictions', async () => {
    const astronaut = await nodeRed.faceRecognition(ASTRONAUT, nr, 0.67);
    assert.deepEqual(astronaut.predictions.map((p) => p.userid), ['unknown']);
    const cat = await nodeRed.faceRecognition(CAT, nr, 0.67);
    assert.deepEqual([cat.success, cat.predictions], [true, []]);
  });

  it('a deleted user is unknown at once', async () => {
    assert.deepEqual((await dsForm(server.url, 'delete', { userid: 'person-5', api_key: 'nr-key-1' })).status, 200);
    const answer = await nodeRed.faceRecognition(transformed, nr, 0.67);
    const ids = who(answer.predictions);
    assert.equal(answer.predictions[ids.indexOf(5)]!.userid, 'unknown');
    assert.equal(await store.rowsFor('person-5'), 0);
  });

  it('with keys set, register and recognize need one: api_key, or DeepStack\'s admin_key', async () => {
    const none = { ...nr, credentials: {} };
    for (const call of [() => nodeRed.faceRegistration([crops[3]!], none, 'x'), () => nodeRed.faceRecognition(transformed, none, 0.67)]) {
      await assert.rejects(call(), (err: HttpError) => err.response?.statusCode === 401);
    }
    assert.equal((await dsForm(server.url, 'list', {})).status, 401);
    assert.equal((await dsForm(server.url, 'delete', { userid: 'person-1' })).status, 401);
    assert.equal(await store.rowsFor('person-1'), 1, 'nothing deleted without a key');
    const admin = { ...nr, credentials: { adminKey: 'nr-key-1' } };
    assert.equal((await nodeRed.faceRegistration([crops[3]!], admin, 'person-3')).message, 'face already registered');
  });

  it('logged every request and nothing of a face: no userid, descriptor, photo bytes or hash, no key', async () => {
    const text = captured.text();
    assert.match(text, /POST \/v1\/vision\/face\/register 200/, 'the requests are logged');
    const [descriptor] = await store.descriptorsOf('person-0');
    const needles = [
      'alice', 'person-3', 'nr-key-1',
      descriptor!.toString('base64').slice(0, 24), descriptor!.toString('hex').slice(0, 24),
      crops[0]!.subarray(300, 348).toString('base64'), transformed.subarray(300, 348).toString('base64'),
      (await import('node:crypto')).createHash('sha256').update(crops[0]!).digest('hex'),
    ];
    for (const needle of needles) assert.ok(!text.includes(needle), 'nothing of a face or a key in the logs');
  });
});

describe('two cvserve processes on one PostgreSQL share a gallery', () => {
  let store: Store;
  let one: ServerProcess;
  let two: ServerProcess;
  let dataDir: string;

  before(async () => {
    if (!boxes) {
      const engines = new SharedEngines();
      const { data, info } = await sharp(PHOTO).raw().toBuffer({ resolveWithObject: true });
      boxes = (await engines.base.face.detect({ data, width: info.width, height: info.height, channels: 3 })).map((f) => f.box);
      await engines.close();
      crops = await Promise.all(boxes.map((b) => cropAround(b)));
      transformed = await transformedPhoto(SCALE);
    }
    store = await postgresStore();
    dataDir = mkdtempSync(path.join(os.tmpdir(), 'cvserve-faces-2p-'));
    // Each process: its own (unused) data dir, the one database; nothing else shared.
    const start = (n: number) =>
      startReplica({
        cwd: REPO_ROOT,
        modelsDir: MODELS_DIR,
        startTimeoutMs: 600_000,
        env: guardedEnv({ CVSERVE_DATABASE_URL: store.settings.databaseUrl, CVSERVE_DATA_DIR: path.join(dataDir, String(n)), CVSERVE_REQUEST_TIMEOUT_MS: '600000' }),
      });
    [one, two] = await Promise.all([start(1), start(2)]);
  });
  after(async () => {
    await Promise.all([one?.stop(), two?.stop()]);
    await store?.destroy();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
    await stopTestServer();
  });

  it('registers through one process and recognizes (then deletes) through the other', async () => {
    const at = (p: ServerProcess): NodeRedServer => ({ proto: 'http', host: '127.0.0.1', port: p.port, version: 'v1', credentials: {}, rejectUnauthorized: false });
    // The second one has its snapshot of the (empty) gallery before the register: it must see the change.
    const before = (await nodeRed.faceRecognition(transformed, at(two), 0.67)).predictions;
    assert.equal(before.length, 17);
    assert.ok(before.every((p) => p.userid === 'unknown'));
    for (const i of [2, 7, 11]) assert.equal((await nodeRed.faceRegistration([crops[i]!], at(one), `person-${i}`)).success, true);
    const seen = await nodeRed.faceRecognition(transformed, at(two), 0.67);
    const ids = who(seen.predictions);
    assert.equal(seen.predictions.length, 17);
    seen.predictions.forEach((p, k) => assert.equal(p.userid, [2, 7, 11].includes(ids[k]!) ? `person-${ids[k]}` : 'unknown'));
    assert.deepEqual((await dsForm(two.url, 'list', {})).body.faces, ['person-11', 'person-2', 'person-7']);
    assert.equal((await dsForm(two.url, 'delete', { userid: 'person-7' })).status, 200);
    const after = await nodeRed.faceRecognition(transformed, at(one), 0.67);
    assert.equal(after.predictions.filter((p) => p.userid !== 'unknown').length, 2, 'deleted through the other, gone here');
    assert.equal(await store.rowsFor('person-7'), 0);
  });

  it('both replicas stop cleanly: exit code 0 (the network guard in them turns any refused connection into 1)', async () => {
    const exits = await Promise.all([one.stop(), two.stop()]);
    assert.deepEqual(exits, [
      { code: 0, signal: null },
      { code: 0, signal: null },
    ]);
  });
});
