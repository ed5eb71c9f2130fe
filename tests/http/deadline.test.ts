import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, describe, it } from 'node:test';
import v8 from 'node:v8';
import vm from 'node:vm';
import request from 'supertest';
import type { CvServe } from '../../src/app.js';
import { Deadline } from '../../src/resources/deadline.js';
import { createTestApp } from '../helpers/app.js';
import { Gate, gateResource } from '../helpers/gates.js';
import { brief } from '../helpers/http.js';
import { image } from '../helpers/paths.js';

// A real collector to call between start and deadline, without needing `node --expose-gc`.
v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

/** Collects garbage every few milliseconds until stopped: whatever holds the deadline only weakly is gone. */
function collectGarbageContinuously(): () => void {
  const timer = setInterval(() => gc(), 5);
  return () => clearInterval(timer);
}

describe('the request deadline always fires (nodejs/node#57736)', () => {
  it('Deadline aborts with REQUEST_TIMEOUT after a forced garbage collection', { timeout: 20_000 }, async () => {
    const fired = new Promise<unknown>((resolve) => {
      // Nothing but the Deadline object itself, created and dropped here, holds the timer.
      new Deadline(150).signal.addEventListener('abort', function (this: AbortSignal) {
        resolve(this.reason);
      });
    });
    const stop = collectGarbageContinuously();
    try {
      const reason = (await fired) as { code?: string };
      assert.equal(reason.code, 'REQUEST_TIMEOUT');
    } finally {
      stop();
    }
  });

  it('Deadline.run rejects when the work never settles, and clears its timer when it does', async () => {
    const never = new Promise<never>(() => {});
    await assert.rejects(new Deadline(50).run(() => never), (err: { code?: string }) => err.code === 'REQUEST_TIMEOUT');
    const quick = new Deadline(60_000);
    assert.equal(await quick.run(async () => 'done'), 'done');
    assert.equal(quick.signal.aborted, false, 'a finished request is not aborted later');
  });

  describe('through the app', () => {
    const gate = new Gate();
    let svc: CvServe;
    after(async () => {
      gate.open();
      await svc?.close();
    });

    it('answers 504 at the deadline while garbage is collected, and the work sees its signal abort', { timeout: 20_000 }, async () => {
      // Long enough that the decode before the gate finishes on a busy machine; the gate then holds the work until the deadline.
      svc = await createTestApp({ requestTimeoutMs: 3000 }, { resources: [gateResource(gate)] });
      const stop = collectGarbageContinuously();
      try {
        const pending = request(svc.app).post('/gate').set('Content-Type', 'image/jpeg').send(readFileSync(image('cat_small.jpg')));
        const res = await pending;
        assert.equal(res.status, 504, brief(res));
        assert.equal(res.body.code, 'REQUEST_TIMEOUT');
        assert.equal(gate.entered, 1, 'the work had started');
        assert.equal(gate.aborted, 1, 'the work was told to stop');
      } finally {
        stop();
      }
    });
  });
});
