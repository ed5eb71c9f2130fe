import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import sharp from 'sharp';
import type { CvServe } from '../../src/app.js';
import { frigateDetect, frigateFrame, homeAssistantDetect, homeAssistantFaceList, type Prediction } from '../../scripts/deepstack-clients.js';
import { createTestApp } from '../helpers/app.js';
import { listen, type Listening } from '../helpers/http.js';
import { boxIoU } from '../helpers/images.js';
import { capturingLogger } from '../helpers/log.js';
import { guardedEnv } from '../helpers/net.js';
import { image, REPO_ROOT } from '../helpers/paths.js';
import { writeYoloModelsDir, YOLO_EXPECTED, yoloTestImage, type YoloLayout } from '../helpers/yolo-model.js';

/** node-red-contrib-deepstack's own client functions (CommonJS; got 11 + form-data underneath). */
interface NodeRedServer {
  proto: string;
  host: string;
  port: number;
  version: string;
  credentials: { apiKey?: string; adminKey?: string };
  rejectUnauthorized: boolean;
}
type DsAnswer = { success: boolean; predictions: Prediction[]; message?: string; error?: string; duration?: number };
interface NodeRedDeepstack {
  objectDetection(image: Buffer, server: NodeRedServer, confidence: number): Promise<DsAnswer>;
  customModel(image: Buffer, server: NodeRedServer, confidence: number, model: string): Promise<DsAnswer>;
  faceRecognition(image: Buffer, server: NodeRedServer, confidence: number): Promise<DsAnswer>;
  faceRegistration(images: Buffer[], server: NodeRedServer, userid: string): Promise<DsAnswer>;
}
const nodeRed = createRequire(import.meta.url)('node-red-contrib-deepstack/deepstack-integration.js') as NodeRedDeepstack;

function formWith(image: Buffer): FormData {
  const form = new FormData();
  form.append('image', new Blob([new Uint8Array(image)]), 'image.jpg');
  return form;
}

const labelsOf = (a: { predictions: Prediction[] }) => a.predictions.map((p) => p.label);
const boxOf = (p: Prediction) => [p.x_min, p.y_min, p.x_max, p.y_max];

describe('Real DeepStack clients against cvserve on 127.0.0.1: Node-RED\'s client code, Home Assistant- and Frigate-shaped requests', () => {
  let svc: CvServe;
  let server: Listening;
  let nr: NodeRedServer;
  let dir: string;
  let cat: Buffer;
  let car: Buffer;
  let group: Buffer;
  let yoloImage: Buffer;
  /** A crop of the group photo around one face (the face at [296, 171, 328, 217]). */
  let oneFace: Buffer;
  const captured = capturingLogger('info');

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'cvserve-ds-clients-'));
    const models = await writeYoloModelsDir(path.join(dir, 'models'), [{ layout: 'yolov8' }, { layout: 'yolov5' }]);
    // A scene classifier named in the manifest's routes (here the ImageNet one again: the only classifier at hand).
    const manifest = JSON.parse(await readFile(models.manifestFile, 'utf8')) as { routes: Record<string, string> };
    manifest.routes.scene = 'mobilenetv2-12-int8';
    await writeFile(models.manifestFile, JSON.stringify(manifest, null, 2));
    svc = await createTestApp({ modelsDir: models.dir, modelsManifest: models.manifestFile, dataDir: path.join(dir, 'data') }, { logger: captured.log });
    server = await listen(svc.handler);
    nr = { proto: 'http', host: '127.0.0.1', port: server.port, version: 'v1', credentials: {}, rejectUnauthorized: false };
    [cat, car, group] = await Promise.all(['cat_small.jpg', 'car.jpg', 'test_face_processing.jpg'].map((f) => readFile(image(f))));
    yoloImage = await yoloTestImage();
    oneFace = await sharp(group).extract({ left: 250, top: 150, width: 150, height: 150 }).jpeg({ quality: 95 }).toBuffer();
  });
  after(async () => {
    await server?.close();
    await svc?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('Node-RED objectDetection: the cat on cat_small.jpg, cars on car.jpg, 17 persons on test_face_processing.jpg', async () => {
    const onCat = await nodeRed.objectDetection(cat, nr, 0.4);
    assert.equal(onCat.success, true);
    assert.deepEqual(labelsOf(onCat), ['cat', 'bed']);
    assert.ok(boxIoU(boxOf(onCat.predictions[0]!), [261, 372, 912, 1275]) >= 0.9, JSON.stringify(onCat.predictions[0]));
    const onCar = await nodeRed.objectDetection(car, nr, 0.5);
    assert.deepEqual(labelsOf(onCar), ['car', 'car', 'car', 'car']);
    assert.ok(boxIoU(boxOf(onCar.predictions[0]!), [255, 56, 1948, 1258]) >= 0.9, JSON.stringify(onCar.predictions[0]));
    const onGroup = await nodeRed.objectDetection(group, nr, 0.3);
    assert.equal(onGroup.predictions.length, 17);
    assert.ok(labelsOf(onGroup).every((l) => l === 'person'));
  });

  it('Node-RED with its confidence unset sends min_confidence "NaN": the default 0.4 applies', async () => {
    assert.deepEqual(labelsOf(await nodeRed.objectDetection(cat, nr, Number.NaN)), ['cat', 'bed']);
  });

  for (const layout of ['yolov8', 'yolov5'] as YoloLayout[]) {
    it(`Node-RED customModel: the generated ${layout} detector answers its hand-computed boxes at /v1/vision/custom/test-${layout}`, async () => {
      const answer = await nodeRed.customModel(yoloImage, nr, 0.4, `test-${layout}`);
      assert.equal(answer.success, true);
      const expected = YOLO_EXPECTED[layout];
      assert.deepEqual(answer.predictions.map((p) => [p.label, ...boxOf(p)]), expected.map((e) => [e.label, ...e.box]));
      answer.predictions.forEach((p, i) => assert.equal(p.confidence, Math.round(expected[i]!.score * 1000) / 1000, `${layout} #${i}`));
    });
  }

  it('/custom/list names the COCO detector and both generated ones; names match case-insensitively', async () => {
    const list = (await (await fetch(`${server.url}/v1/vision/custom/list`, { method: 'POST' })).json()) as { models: string[] };
    assert.deepEqual(list.models, ['yolox-nano', 'test-yolov8', 'test-yolov5']);
    const upper = await nodeRed.customModel(yoloImage, nr, 0.65, 'TEST-YOLOV8');
    assert.deepEqual(labelsOf(upper), ['person', 'dog']);
  });

  it('/v1/vision/scene runs the classifier the manifest names for `scene`, a resource of its own', async () => {
    const res = await fetch(`${server.url}/v1/vision/scene`, { method: 'POST', body: formWith(car) });
    const body = (await res.json()) as { success: boolean; label: string; confidence: number };
    assert.deepEqual([res.status, body.success, body.label], [200, true, 'sports car']);
    assert.ok(captured.lines().some((l) => l.msg === '/deepstack-scene: mobilenetv2-12-int8.onnx loaded'), 'the scene resource loaded its model');
  });

  it('Node-RED sees an error answer as a rejected call carrying the dialect\'s JSON', async () => {
    await assert.rejects(nodeRed.objectDetection(Buffer.from('no image here'), nr, 0.4), (err: { response?: { statusCode: number; body: string } }) => {
      assert.equal(err.response?.statusCode, 415);
      assert.deepEqual(JSON.parse(err.response!.body), { success: false, error: 'Unsupported image type: send JPEG, PNG, WebP, GIF, TIFF or AVIF', code: 415 });
      return true;
    });
    await assert.rejects(nodeRed.customModel(cat, nr, 0.4, 'ipcam-general'), (err: { response?: { statusCode: number } }) => err.response?.statusCode === 404);
  });

  it('Node-RED faceRegistration (files image0..N) then faceRecognition: the registered face is named in the group photo', async () => {
    const registered = await nodeRed.faceRegistration([oneFace], nr, 'alice');
    assert.equal(registered.success, true);
    assert.equal(registered.message, 'face added');
    const again = await nodeRed.faceRegistration([oneFace, oneFace], nr, 'alice');
    assert.equal(again.message, 'face already registered');
    const recognized = await nodeRed.faceRecognition(group, nr, 0.67);
    assert.equal(recognized.success, true);
    assert.equal(recognized.predictions.length, 17);
    const alice = recognized.predictions.filter((p) => p.userid === 'alice');
    assert.equal(alice.length, 1, JSON.stringify(recognized.predictions.filter((p) => p.userid !== 'unknown')));
    assert.ok(boxIoU(boxOf(alice[0]!), [296, 171, 328, 217]) >= 0.6, JSON.stringify(alice[0]));
    assert.ok(alice[0]!.confidence >= 0.67 && alice[0]!.confidence <= 1);
    // No face at all: a success with no predictions (DeepStack's answer; Home Assistant needs `predictions`).
    const none = await nodeRed.faceRecognition(yoloImage, nr, 0.67);
    assert.deepEqual([none.success, none.predictions], [true, []]);
  });

  it('Node-RED faceRegistration of a photo without a face: 400 "No face found in image"', async () => {
    await assert.rejects(nodeRed.faceRegistration([yoloImage], nr, 'bob'), (err: { response?: { statusCode: number; body: string } }) => {
      assert.equal(err.response?.statusCode, 400);
      assert.match(JSON.parse(err.response!.body).error, /^No face found in image/);
      return true;
    });
  });

  it('Home Assistant-shaped: files={"image"} with no part type, data={"api_key": "", "min_confidence": 0.1}; boxes inside the image sent', async () => {
    const { answer, predictions } = await homeAssistantDetect({ url: server.url }, car);
    assert.equal(answer.status, 200);
    assert.ok(predictions.length >= 5, `${predictions.length} predictions at 0.1`);
    assert.ok(predictions.every((p) => p.confidence >= 0.1));
    assert.ok(predictions.every((p) => p.x_min >= 0 && p.y_min >= 0 && p.x_max <= 2372 && p.y_max <= 1334));
    const custom = await homeAssistantDetect({ url: server.url }, yoloImage, { customModel: 'test-yolov8', minConfidence: 0.4 });
    assert.deepEqual(custom.predictions.map((p) => p.label), ['person', 'dog', 'car', 'person']);
    const faces = await homeAssistantFaceList({ url: server.url });
    assert.deepEqual(faces.faces, ['alice']);
  });

  it('Frigate-shaped: a 320x320 JPEG frame, only api_key, the default threshold; read until the first under 0.4, at most 20', async () => {
    const frame = await frigateFrame(car);
    const meta = await sharp(frame).metadata();
    assert.deepEqual([meta.format, meta.width, meta.height], ['jpeg', 320, 320]);
    const { answer, detections } = await frigateDetect({ url: server.url }, frame, { timeoutMs: 600_000 });
    assert.equal(answer.status, 200);
    assert.equal(answer.headers['transfer-encoding'], undefined);
    assert.ok(detections.length >= 1 && detections.length <= 20, `${detections.length} detections`);
    assert.equal(detections[0]![0], 'car');
    for (const [, score, ...box] of detections) {
      assert.ok(score >= 0.4);
      assert.ok(box.every((v) => v >= 0 && v <= 1), 'relative box');
    }
  });

  it('scripts/deepstack-clients.ts (the README\'s client check) passes against the server', async () => {
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ['--import', 'tsx', 'scripts/deepstack-clients.ts', '--url', server.url, '--image', image('car.jpg'), '--frigate-timeout-ms', '600000'],
      { cwd: REPO_ROOT, env: guardedEnv(process.env), timeout: 600_000 },
    );
    assert.doesNotMatch(stdout, /FAILED/, stdout);
    assert.match(stdout, /Home Assistant detection\s+HTTP 200/);
    assert.match(stdout, /Home Assistant face list\s+HTTP 200, 1 registered: alice/);
    assert.match(stdout, /Frigate \(600000 ms timeout\) x20\s+20\/20 in time/);
  });
});
