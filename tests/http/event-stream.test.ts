import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import request from 'supertest';
import { z } from 'zod';
import type { CvServe } from '../../src/app.js';
import { AppError } from '../../src/errors.js';
import type { ResourceDeclaration } from '../../src/resources/define.js';
import { createUpscaleResource } from '../../src/resources/upscale.js';
import { createTestApp } from '../helpers/app.js';
import { CvServeClient } from '../../src/client.js';
import { Gate } from '../helpers/gates.js';
import { brief, listen } from '../helpers/http.js';
import { image } from '../helpers/paths.js';

interface ServerEvent {
  event: string;
  data: Record<string, unknown>;
}

function parseEvents(text: string): ServerEvent[] {
  return text
    .split('\n\n')
    .filter((block) => block.trim() !== '')
    .map((block) => {
      const event = /^event: (.*)$/m.exec(block)?.[1] ?? 'message';
      const data = JSON.parse(/^data: (.*)$/m.exec(block)?.[1] ?? 'null') as Record<string, unknown>;
      return { event, data };
    });
}

/** When set, the stepper waits after each progress step until the test opens that step's gate. */
let held: Gate[] | undefined;

/** A resource that reports three steps of progress, then answers (or fails, with fail=true). */
const stepper: ResourceDeclaration<z.ZodObject> = {
  name: 'stepper',
  summary: 'reports progress',
  params: z.strictObject({ fail: z.enum(['true', 'false']).default('false') }),
  output: { kind: 'json', schema: z.object({ done: z.boolean() }) },
  async run(_input, params, ctx) {
    for (let i = 1; i <= 3; i++) {
      ctx.progress?.(i, 3);
      await held?.[i - 1]!.pass();
    }
    if ((params as { fail: string }).fail === 'true') throw new AppError('UNDECODABLE_IMAGE', { publicMessage: 'failed at the end' });
    return { kind: 'json', body: { done: true } };
  },
};

const sse = (req: request.Test) =>
  req.set('Accept', 'text/event-stream').buffer(true).parse((res, done) => {
    let text = '';
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => (text += chunk));
    res.on('end', () => done(null, text));
  });

const HANG_MS = 60_000;

/** An event-stream request read as it arrives: `next()` waits for the next complete event. */
async function openStream(url: string, body: Buffer): Promise<{ status: number; ended: boolean; next(): Promise<ServerEvent>; pending(): string }> {
  const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
    const req = http.request(url, { method: 'POST', headers: { Accept: 'text/event-stream', 'Content-Type': 'image/jpeg' } }, resolve);
    req.on('error', reject);
    req.end(body);
  });
  res.setEncoding('utf8');
  let buffer = '';
  let wake: (() => void) | undefined;
  const state = { ended: false };
  res.on('data', (chunk: string) => {
    buffer += chunk;
    wake?.();
  });
  res.on('end', () => {
    state.ended = true;
    wake?.();
  });
  return {
    status: res.statusCode ?? 0,
    get ended() {
      return state.ended;
    },
    pending: () => buffer,
    async next() {
      for (;;) {
        const end = buffer.indexOf('\n\n');
        if (end >= 0) {
          const block = buffer.slice(0, end + 2);
          buffer = buffer.slice(end + 2);
          return parseEvents(block)[0]!;
        }
        if (state.ended) throw new Error(`the stream ended without another event (left: ${buffer.slice(0, 200)})`);
        // The limit only turns "never sent while the work is held" into a failure instead of a hang.
        let timer: NodeJS.Timeout | undefined;
        const arrived = await new Promise<boolean>((resolve) => {
          wake = () => resolve(true);
          timer = setTimeout(() => resolve(false), HANG_MS);
        });
        clearTimeout(timer);
        if (!arrived) throw new Error(`no event arrived within ${HANG_MS / 1000} s while the work was held`);
      }
    },
  };
}

describe('Accept: text/event-stream: progress events, then the answer', () => {
  let svc: CvServe;
  let photo: Buffer;
  before(async () => {
    svc = await createTestApp({}, { resources: [stepper, createUpscaleResource()] });
    photo = await sharp(image('test_face_processing.jpg')).extract({ left: 0, top: 0, width: 300, height: 200 }).jpeg().toBuffer();
  });
  after(() => svc.close());

  it('streams every progress step, then the result', async () => {
    const res = await sse(request(svc.app).post('/stepper').set('Content-Type', 'image/jpeg').send(photo));
    assert.equal(res.status, 200);
    assert.match(res.headers['content-type'] ?? '', /^text\/event-stream/);
    assert.deepEqual(parseEvents(res.body as string), [
      { event: 'progress', data: { done: 1, total: 3 } },
      { event: 'progress', data: { done: 2, total: 3 } },
      { event: 'progress', data: { done: 3, total: 3 } },
      { event: 'result', data: { done: true } },
    ]);
  });

  it('sends each progress event while the work is still running, not all at the end', async () => {
    const gates = [new Gate(), new Gate(), new Gate()];
    held = gates;
    const server = await listen(svc.handler);
    try {
      const stream = await openStream(`${server.url}/stepper`, photo);
      assert.equal(stream.status, 200);
      for (let step = 1; step <= 3; step++) {
        await gates[step - 1]!.whenEntered();
        // The work waits at this step's gate: the event must already have reached the client.
        assert.deepEqual(await stream.next(), { event: 'progress', data: { done: step, total: 3 } }, `step ${step} arrives while held`);
        assert.equal(stream.ended, false, `the answer is still open at step ${step}`);
        assert.deepEqual(stream.pending(), '', `nothing else was sent at step ${step}`);
        gates[step - 1]!.open();
      }
      assert.deepEqual(await stream.next(), { event: 'result', data: { done: true } });
    } finally {
      held = undefined;
      for (const g of gates) g.open();
      await server.close();
    }
  });

  it('an error after the stream opened is its last event; one before is a plain HTTP error', async () => {
    const late = await sse(request(svc.app).post('/stepper?fail=true').set('Content-Type', 'image/jpeg').send(photo));
    const events = parseEvents(late.body as string);
    assert.deepEqual(events.at(-1), { event: 'error', data: { status: 'unprocessable entity', message: 'failed at the end', code: 'UNDECODABLE_IMAGE' } });
    const early = await request(svc.app).post('/stepper?fail=maybe').set('Accept', 'text/event-stream').set('Content-Type', 'image/jpeg').send(photo);
    assert.equal(early.status, 400, brief(early));
    assert.equal(early.body.code, 'BAD_PARAMETER');
  });

  it('/upscale reports its tiles, then the upscaled image as {imageBase64, format}; without the header nothing changes', async () => {
    const res = await sse(request(svc.app).post('/upscale').set('Content-Type', 'image/jpeg').send(photo));
    const events = parseEvents(res.body as string);
    const progress = events.filter((e) => e.event === 'progress').map((e) => e.data as { done: number; total: number });
    assert.ok(progress.length >= 1, 'at least one progress event');
    assert.equal(progress.at(-1)!.done, progress.at(-1)!.total, 'the last one says all tiles are done');
    assert.ok(progress.every((p, i) => i === 0 || p.done > progress[i - 1]!.done), 'done only grows');
    const result = events.at(-1)!;
    assert.equal(result.event, 'result');
    assert.equal(result.data.format, 'jpeg');
    const meta = await sharp(Buffer.from(result.data.imageBase64 as string, 'base64')).metadata();
    assert.deepEqual([meta.width, meta.height], [900, 600]);

    const plain = await request(svc.app).post('/upscale').set('Content-Type', 'image/jpeg').send(photo);
    assert.equal(plain.status, 200);
    assert.equal(plain.type, 'image/jpeg');
  });

  it('the typed client (the playground uses it) reports the progress and returns the image, as the plain request would', async () => {
    const server = await listen(svc.handler);
    try {
      const client = new CvServeClient({ baseUrl: server.url });
      const seen: [number, number][] = [];
      const answer = await client.request('upscale', new Blob([new Uint8Array(photo)], { type: 'image/jpeg' }), {}, { onProgress: (done, total) => seen.push([done, total]) });
      assert.ok(seen.length >= 1 && seen.at(-1)![0] === seen.at(-1)![1], JSON.stringify(seen));
      assert.equal(answer.kind, 'image');
      if (answer.kind !== 'image') return;
      const meta = await sharp(Buffer.from(answer.bytes)).metadata();
      assert.deepEqual([meta.format, meta.width, meta.height], ['jpeg', 900, 600]);
      await assert.rejects(client.request('stepper', new Blob([new Uint8Array(photo)]), { fail: 'true' }, { onProgress: () => {} }), /failed at the end/);
    } finally {
      await server.close();
    }
  });
});
