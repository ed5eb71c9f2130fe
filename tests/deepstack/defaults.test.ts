import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import request from 'supertest';
import { z } from 'zod';
import type { CvServe } from '../../src/app.js';
import type { AnyResource } from '../../src/resources/contract.js';
import { createFaceRecognitionResource } from '../../src/resources/facerecognition.js';
import { createTestApp } from '../helpers/app.js';
import { brief } from '../helpers/http.js';

/**
 * The default min_confidence of each DeepStack route, as the README promises (detection 0.4,
 * face 0.55, recognize 0.67), pinned by stand-in detectors whose scores sit just under, at and
 * just over each default: a default moved by 0.01 either way changes the answer. The stand-ins
 * report what a real resource reports: the results scoring at least the threshold it was given.
 */

const PNG_1X1 = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGNgYGAAAAAEAAH2FzhVAAAAAElFTkSuQmCC', 'base64');

/** Scores around `at`: one under, one exactly at, one over. */
const around = (at: number) => [Math.round((at - 0.01) * 100) / 100, at, Math.round((at + 0.01) * 100) / 100];

function standIn(name: string, thresholdParam: string, results: (threshold: number) => Record<string, unknown>[]): AnyResource & { given: number[] } {
  const given: number[] = [];
  return {
    name,
    summary: `stand-in ${name}`,
    params: z.object({}).passthrough(),
    output: { kind: 'json', schema: z.object({}).passthrough() },
    async init() {},
    status: () => ({ ready: true }),
    async run(_input, params) {
      const threshold = Number((params as Record<string, unknown>)[thresholdParam]);
      given.push(threshold);
      return { kind: 'json', body: { status: 'ok', result: results(threshold) } };
    },
    async close() {},
    given,
  };
}

const box = (i: number) => [10 * i, 10 * i, 10 * i + 8, 10 * i + 8];

describe('DeepStack defaults: min_confidence when the client sends none', () => {
  let svc: CvServe;
  const detection = standIn('catdetection', 'threshold', (t) => around(0.4).filter((s) => s >= t).map((score, i) => ({ box: box(i), label: `s${score}`, score })));
  const face = standIn('facedetection', 'minConfidence', (t) => around(0.55).filter((s) => s >= t).map((score, i) => ({ box: box(i), score })));
  // Recognition reports every face; a face is its user only when the confidence reaches the threshold.
  const recognize = standIn('facerecognition', 'minConfidence', (t) => around(0.67).map((confidence, i) => ({ box: box(i), userid: confidence >= t ? `user-${confidence}` : 'unknown', confidence })));

  before(async () => {
    svc = await createTestApp({}, { resources: [detection, face, recognize] }, { waitForWorkers: false });
  });
  after(() => svc?.close());

  it('/v1/vision/detection: 0.4', async () => {
    const res = await request(svc.app).post('/v1/vision/detection').attach('image', PNG_1X1, 'a.png');
    assert.equal(res.status, 200, brief(res));
    assert.deepEqual(detection.given, [0.4]);
    assert.deepEqual(res.body.predictions.map((p: { confidence: number }) => p.confidence), [0.4, 0.41]);
  });

  it('/v1/vision/face: 0.55', async () => {
    const res = await request(svc.app).post('/v1/vision/face').attach('image', PNG_1X1, 'a.png');
    assert.equal(res.status, 200, brief(res));
    assert.deepEqual(face.given, [0.55]);
    assert.deepEqual(res.body.predictions.map((p: { confidence: number }) => p.confidence), [0.55, 0.56]);
  });

  it('/v1/vision/face/recognize: 0.67; the stranger keeps its own confidence', async () => {
    const res = await request(svc.app).post('/v1/vision/face/recognize').attach('image', PNG_1X1, 'a.png');
    assert.equal(res.status, 200, brief(res));
    assert.deepEqual(recognize.given, [0.67]);
    assert.deepEqual(
      res.body.predictions.map((p: { userid: string; confidence: number }) => [p.userid, p.confidence]),
      [
        ['unknown', 0.66],
        ['user-0.67', 0.67],
        ['user-0.68', 0.68],
      ],
    );
  });

  it('a min_confidence sent is used as sent (raised to 0.1 when smaller, as DeepStack does)', async () => {
    await request(svc.app).post('/v1/vision/face').field('min_confidence', '0.6').attach('image', PNG_1X1, 'a.png');
    await request(svc.app).post('/v1/vision/face').field('min_confidence', '0.01').attach('image', PNG_1X1, 'a.png');
    assert.deepEqual(face.given.slice(-2), [0.6, 0.1]);
  });
});

describe('the native /facerecognition default', () => {
  it('is 0.67, the same as the dialect\'s (CVSERVE_FACE_MATCH_THRESHOLD maps to it)', () => {
    const resource = createFaceRecognitionResource();
    assert.equal((resource.params.parse({}) as { minConfidence: number }).minConfidence, 0.67);
  });
});
