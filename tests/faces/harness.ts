import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import pg from 'pg';
import { pino, type Logger } from 'pino';
import sharp from 'sharp';
import { createApp, type CvServe } from '../../src/app.js';
import { testConfig, type Config } from '../../src/config.js';
import { createEngines, closeEngines, type Engines } from '../../src/engines/engines.js';
import type { FaceBox } from '../../src/engines/face/engine.js';
import { galleryFile } from '../../src/faces/open.js';
import { FaceGalleryService, faceServiceOptions, type FaceServiceOptions } from '../../src/faces/service.js';
import { createCannyResource } from '../../src/resources/canny.js';
import type { AnyResource, ServiceSet } from '../../src/resources/contract.js';
import { createFaceDetectionResource } from '../../src/resources/facedetection.js';
import { createFaceRecognitionResource } from '../../src/resources/facerecognition.js';
import { DecodeBudget } from '../../src/image/decode-memory.js';
import { image, MODELS_DIR } from '../helpers/paths.js';
import { testDatabase } from './backends.js';

/** The group photo: 17 people, faces of ~30 px. */
export const PHOTO_FILE = image('test_face_processing.jpg');
export const PHOTO = readFileSync(PHOTO_FILE);
export const W = 640;
export const H = 482;

export const centre = (b: readonly number[]) => [(b[0]! + b[2]!) / 2, (b[1]! + b[3]!) / 2] as const;

/** Index of the box whose centre is nearest (x, y), and that distance. */
export function nearest(boxes: readonly (readonly number[])[], x: number, y: number): { index: number; distance: number } {
  let index = -1;
  let distance = Number.POSITIVE_INFINITY;
  boxes.forEach((b, i) => {
    const [cx, cy] = centre(b);
    const d = Math.hypot(cx - x, cy - y);
    if (d < distance) [index, distance] = [i, d];
  });
  return { index, distance };
}

/**
 * A JPEG of the photo around one face: the box grown by `margin` times its size on every side (the
 * face in context, as people crop a portrait). Measured on the 17 faces: at 0.75 each crop's
 * largest face is its own (at 1, face 13's crop holds a larger neighbour, and register takes the
 * largest face), and at 0.5 the detector misses three faces cut too tight.
 */
export async function cropAround(box: FaceBox, margin = 0.75): Promise<Buffer> {
  const [x0, y0, x1, y1] = box;
  const w = Math.round((x1 - x0) * margin);
  const h = Math.round((y1 - y0) * margin);
  const left = Math.max(0, x0 - w);
  const top = Math.max(0, y0 - h);
  return sharp(PHOTO)
    .extract({ left, top, width: Math.min(W, x1 + w) - left, height: Math.min(H, y1 + h) - top })
    .jpeg({ quality: 92 })
    .toBuffer();
}

/** The whole photo flipped left-right and rescaled, re-encoded: a different image of the same people. */
export function transformedPhoto(scale: number): Promise<Buffer> {
  return sharp(PHOTO).flop().resize(Math.round(W * scale)).jpeg({ quality: 90 }).toBuffer();
}

/** Where a box of the transformed photo was in the original (its centre). */
export function untransform(box: readonly number[], scale: number): [number, number] {
  const [x, y] = centre(box);
  return [W - x / scale, y / scale];
}

/** A pino logger that keeps every line it writes. */
export function capturingLog(): { log: Logger; text: () => string } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      lines.push(String(chunk));
      done();
    },
  });
  return { log: pino({ level: 'debug' }, stream), text: () => lines.join('') };
}

/** Where a gallery lives for a test: a fresh SQLite directory, or a fresh PostgreSQL database. */
export interface Store {
  name: 'SQLite' | 'PostgreSQL';
  /** The settings that select it. */
  settings: Pick<Config, 'dataDir' | 'databaseUrl'>;
  /** Rows of face_descriptors for a userid, counted by the database. */
  rowsFor(userid: string): Promise<number>;
  /** Stored descriptor bytes of a userid (to look for them elsewhere). */
  descriptorsOf(userid: string): Promise<Buffer[]>;
  destroy(): Promise<void>;
}

export function sqliteStore(): Store {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'cvserve-faces-svc-'));
  const query = async <T>(work: (db: import('better-sqlite3').Database) => T): Promise<T> => {
    const { default: Database } = await import('better-sqlite3');
    const db = new Database(galleryFile(dir), { readonly: true });
    try {
      return work(db);
    } finally {
      db.close();
    }
  };
  return {
    name: 'SQLite',
    settings: { dataDir: dir, databaseUrl: '' },
    rowsFor: (userid) => query((db) => (db.prepare('SELECT COUNT(*) AS n FROM face_descriptors WHERE userid = ?').get(userid) as { n: number }).n),
    descriptorsOf: (userid) => query((db) => (db.prepare('SELECT descriptor FROM face_descriptors WHERE userid = ?').all(userid) as { descriptor: Buffer }[]).map((r) => r.descriptor)),
    destroy: async () => rmSync(dir, { recursive: true, force: true }),
  };
}

let server: Promise<{ url: string; stop: () => Promise<void> }> | undefined;

/** The test PostgreSQL server (CVSERVE_TEST_DATABASE_URL, or one started for this process). */
export function testServer(): Promise<{ url: string; stop: () => Promise<void> }> {
  server ??= testDatabase();
  return server;
}

/** Stops the PostgreSQL server this process started, if any. */
export async function stopTestServer(): Promise<void> {
  if (server) await (await server).stop();
  server = undefined;
}

/** A fresh database on the test server: the service sees only a URL, as in production. */
export async function postgresStore(): Promise<Store> {
  const { url: base } = await testServer();
  const name = `cvserve_faces_${randomBytes(5).toString('hex')}`;
  const admin = async <T>(work: (c: pg.Client) => Promise<T>, database?: string): Promise<T> => {
    const u = new URL(base);
    if (database) u.pathname = `/${database}`;
    const client = new pg.Client({ connectionString: u.toString() });
    await client.connect();
    try {
      return await work(client);
    } finally {
      await client.end();
    }
  };
  await admin((c) => c.query(`CREATE DATABASE ${name}`));
  const url = new URL(base);
  url.pathname = `/${name}`;
  return {
    name: 'PostgreSQL',
    settings: { dataDir: mkdtempSync(path.join(os.tmpdir(), 'cvserve-faces-unused-')), databaseUrl: url.toString() },
    rowsFor: (userid) => admin(async (c) => Number((await c.query('SELECT COUNT(*) AS n FROM face_descriptors WHERE userid = $1', [userid])).rows[0].n), name),
    descriptorsOf: (userid) => admin(async (c) => (await c.query('SELECT descriptor FROM face_descriptors WHERE userid = $1', [userid])).rows.map((r) => r.descriptor as Buffer), name),
    destroy: () => admin((c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)).then(() => undefined),
  };
}

/** Settings for face tests: quiet, small pools, nothing limited by time. */
export function faceTestConfig(overrides: Partial<Config> = {}): Config {
  return testConfig({
    logLevel: 'silent',
    modelsDir: MODELS_DIR,
    opencvWorkers: 1,
    onnxWorkers: 1,
    onnxThreads: 1,
    modelsFetch: false,
    requestTimeoutMs: 600_000,
    urlTimeoutMs: 600_000,
    ...overrides,
  });
}

/**
 * Engines shared by every app of a test file (one face engine: its models load once), each app
 * getting its own face service on its own store, as a restarted process would.
 */
export class SharedEngines {
  readonly base: Engines;
  constructor(config: Config = faceTestConfig()) {
    this.base = createEngines(config);
  }

  /** An app on `store`, with the face routes (and /canny, to show the rest keeps working). */
  async app(config: Config, options: { log?: Logger; resources?: AnyResource[]; faces?: Partial<FaceServiceOptions> } = {}): Promise<CvServe> {
    const decodeBudget = new DecodeBudget(config.decodeMemoryBytes);
    const faces = new FaceGalleryService({ ...faceServiceOptions(config, this.base.face), decodeBudget, ...options.faces });
    const engines: ServiceSet = { ...this.base, faces, decodeBudget };
    const svc = await createApp(config, {
      engines,
      logger: options.log,
      resources: options.resources ?? [createCannyResource(), createFaceDetectionResource(), createFaceRecognitionResource()],
    });
    const close = svc.close.bind(svc);
    svc.close = async () => {
      await close();
      await faces.close();
    };
    return svc;
  }

  close(): Promise<void> {
    return closeEngines(this.base);
  }
}

export const NEVER = new AbortController().signal;
