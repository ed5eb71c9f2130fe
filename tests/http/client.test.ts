import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import type { CvServe } from '../../src/app.js';
import { CvServeClient, CvServeError, type InputWay } from '../../src/client.js';
import { curlCommand } from '../../src/web/curl.js';
import { createTestApp } from '../helpers/app.js';
import { listen, type Listening } from '../helpers/http.js';
import { image } from '../helpers/paths.js';
import { servePhotos, type LocalServer } from '../helpers/photo-server.js';

const KEY = 'client-test-key-5d1c';
const faces = readFileSync(image('test_face_processing.jpg'));

describe('typed client (Node)', () => {
  let svc: CvServe;
  let server: Listening;
  let images: LocalServer;
  let client: CvServeClient;
  let imageUrl: string;

  before(async () => {
    // The loopback image server is reachable because private networks are allowed in this app only.
    svc = await createTestApp({ allowPrivateNetworks: true, apiKeys: [KEY] });
    server = await listen(svc.handler);
    images = await servePhotos(['test_face_processing.jpg']);
    imageUrl = `${images.base}/test_face_processing.jpg`;
    client = new CvServeClient({ baseUrl: `${server.url}/`, apiKey: KEY });
  });
  after(async () => {
    await server.close();
    await images.close();
    await svc.close();
  });

  it('sends the image each of the four ways and gets the same 17 faces', async () => {
    const expected = await client.detect(faces);
    assert.equal(expected.status, 'ok');
    assert.equal(expected.result.length, 17);
    for (const via of ['multipart', 'json', 'raw'] as InputWay[]) assert.deepEqual(await client.detect(faces, {}, { via }), expected, via);
    assert.deepEqual(await client.detect({ url: imageUrl }), expected, 'url');
    assert.deepEqual(await client.detect(new Blob([faces]), { minNeighbors: 5 }), expected, 'Blob');
  });

  it('returns image answers as bytes, whether they came as bytes or as {imageBase64}', async () => {
    const raw = await client.canny(faces, { format: 'png', threshold1: 80 }, { via: 'raw' });
    const json = await client.canny(faces, { format: 'png', threshold1: 80 }, { via: 'json' });
    assert.equal(raw.contentType, 'image/png');
    assert.equal(json.format, 'png');
    assert.deepEqual(Buffer.from(json.bytes), Buffer.from(raw.bytes));
    const meta = await sharp(raw.bytes).metadata();
    assert.deepEqual([meta.width, meta.height], [640, 482]);
    const drawn = await client.drawn('detect', faces, { format: 'webp' });
    assert.equal(drawn.contentType, 'image/webp');
  });

  it('throws CvServeError with the status, code and message of the error answer', async () => {
    await assert.rejects(client.detect(faces, { minNeighbors: 99 }), (err: unknown) => {
      assert.ok(err instanceof CvServeError);
      assert.deepEqual([err.status, err.code, err.message], [400, 'BAD_PARAMETER', 'Invalid parameter: minNeighbors must be ≤ 50']);
      return true;
    });
    const anonymous = new CvServeClient({ baseUrl: client['baseUrl'] as string });
    await assert.rejects(anonymous.detect(faces), { name: 'CvServeError', status: 401, code: 'UNAUTHORIZED' });
    assert.deepEqual(await anonymous.ping(), { success: true });
  });

  it('builds curl commands that quote what the shell would otherwise read', () => {
    assert.equal(
      curlCommand({ origin: 'http://h:1/', route: 'catdetection', image: { kind: 'file', name: "my cat's photo.jpg" }, params: [['labels', 'cat,dog']], outputFile: undefined }),
      `curl -sS -F 'image=@my cat'\\''s photo.jpg' --form-string labels=cat,dog http://h:1/catdetection`,
    );
    assert.equal(
      curlCommand({ origin: 'http://h:1', route: 'canny', image: { kind: 'url', url: 'https://x.test/a b.jpg' }, params: [['format', 'png']], outputFile: 'canny.png', apiKeyFromEnv: true }),
      `curl -sS -H "Authorization: Bearer $CVSERVE_API_KEY" 'http://h:1/canny?url=https%3A%2F%2Fx.test%2Fa+b.jpg&format=png' -o canny.png`,
    );
  });
});
