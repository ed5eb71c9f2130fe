/**
 * Requests shaped exactly as two DeepStack clients send them, against a running cvserve (or any
 * DeepStack / CodeProject.AI server), with their answers read the way those clients read them:
 *
 * - Home Assistant (robmarkcole/deepstack-python 0.8 under HASS-Deepstack-object/-face): Python
 *   `requests.post(url, files={"image": bytes}, data={"api_key": key, "min_confidence": 0.1},
 *   timeout=10)`: the file part is named and filed "image" with no Content-Type; the face list is an
 *   urlencoded body holding only `api_key`. Boxes are divided by the size of the image sent.
 * - Frigate (frigate/detectors/plugins/deepstack.py): the detector's input frame (320x320 RGB) as a
 *   PIL JPEG, `files={"image": jpeg}, data={"api_key": key}`, no min_confidence, timeout 0.1 s;
 *   predictions read in order until the first under 0.4 or with a label outside its COCO map, into
 *   a 20-row array (a 21st detection raises IndexError in Frigate).
 *
 *   npx tsx scripts/deepstack-clients.ts [--url http://127.0.0.1:8080] [--api-key KEY]
 *                                        [--image ../shared/images/car.jpg] [--frigate-timeout-ms 100]
 *
 * Prints one line per client and exits non-zero when a client would have failed.
 */
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { parseArgs } from 'node:util';
import sharp from 'sharp';

export interface ClientAnswer {
  status: number;
  /** The parsed JSON body (undefined when the body was not JSON). */
  body: Record<string, unknown> | undefined;
  headers: http.IncomingHttpHeaders;
  ms: number;
}

type Part = { name: string; value: string } | { name: string; file: Buffer; filename: string };

/**
 * A multipart body as urllib3's `encode_multipart_formdata` writes it for requests: the data
 * fields first, then the files; a file part gets `filename` and no Content-Type header when
 * requests was given bare bytes.
 */
export function pythonMultipart(parts: Part[]): { body: Buffer; contentType: string } {
  const boundary = randomBytes(16).toString('hex');
  const chunks: Buffer[] = [];
  for (const part of parts) {
    const disposition = 'file' in part ? `form-data; name="${part.name}"; filename="${part.filename}"` : `form-data; name="${part.name}"`;
    chunks.push(Buffer.from(`--${boundary}\r\nContent-Disposition: ${disposition}\r\n\r\n`));
    chunks.push('file' in part ? part.file : Buffer.from(part.value, 'utf8'));
    chunks.push(Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: Buffer.concat(chunks), contentType: `multipart/form-data; boundary=${boundary}` };
}

/** One POST with a Content-Length body and a total time limit, as requests' `timeout` (connect + read). */
export function post(url: string, body: Buffer, contentType: string, timeoutMs: number): Promise<ClientAnswer> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', headers: { 'Content-Type': contentType, 'Content-Length': body.length, 'User-Agent': 'python-requests/2.31.0' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        clearTimeout(timer);
        const text = Buffer.concat(chunks).toString('utf8');
        let parsed: Record<string, unknown> | undefined;
        try {
          parsed = JSON.parse(text) as Record<string, unknown>;
        } catch {
          parsed = undefined;
        }
        resolve({ status: res.statusCode ?? 0, body: parsed, headers: res.headers, ms: performance.now() - started });
      });
      res.on('error', reject);
    });
    const timer = setTimeout(() => req.destroy(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs);
    req.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    req.end(body);
  });
}

export interface Prediction {
  label?: string;
  userid?: string;
  confidence: number;
  x_min: number;
  y_min: number;
  x_max: number;
  y_max: number;
}

export interface ServerOptions {
  /** e.g. http://127.0.0.1:8080 */
  url: string;
  /** '' when none: both clients always send the field. */
  apiKey?: string;
}

/** What deepstack-python's `_post` does with an answer: 200 → the JSON's predictions; 404 → "Bad url"; else an exception. */
function homeAssistantRead(answer: ClientAnswer): Prediction[] {
  if (answer.status === 404) throw new Error('DeepstackException: Error from Deepstack request, status code: 404 (Bad url)');
  if (answer.status !== 200) throw new Error(`DeepstackException: Error from Deepstack request, status code: ${answer.status}`);
  if (!answer.body || !Array.isArray(answer.body.predictions)) throw new Error('KeyError: predictions');
  return answer.body.predictions as Prediction[];
}

/**
 * Home Assistant's object detection: `/v1/vision/detection` (or `/v1/vision/custom/<model>`),
 * min_confidence 0.1 (HA filters by its own threshold afterwards), timeout 10 s.
 */
export async function homeAssistantDetect(
  server: ServerOptions,
  image: Buffer,
  options: { customModel?: string; minConfidence?: number; timeoutMs?: number } = {},
): Promise<{ answer: ClientAnswer; predictions: Prediction[] }> {
  const route = options.customModel ? `/v1/vision/custom/${options.customModel}` : '/v1/vision/detection';
  const { body, contentType } = pythonMultipart([
    { name: 'api_key', value: server.apiKey ?? '' },
    { name: 'min_confidence', value: String(options.minConfidence ?? 0.1) },
    { name: 'image', file: image, filename: 'image' },
  ]);
  const answer = await post(`${server.url}${route}`, body, contentType, options.timeoutMs ?? 10_000);
  return { answer, predictions: homeAssistantRead(answer) };
}

/** Home Assistant's face list (deepstack-python `get_registered_faces`): an urlencoded body with only api_key; reads `faces`. */
export async function homeAssistantFaceList(server: ServerOptions, timeoutMs = 10_000): Promise<{ answer: ClientAnswer; faces: string[] }> {
  const body = Buffer.from(new URLSearchParams({ api_key: server.apiKey ?? '' }).toString());
  const answer = await post(`${server.url}/v1/vision/face/list`, body, 'application/x-www-form-urlencoded', timeoutMs);
  if (answer.status !== 200) throw new Error(`DeepstackException: Error from Deepstack request, status code: ${answer.status}`);
  return { answer, faces: (answer.body?.faces ?? []) as string[] };
}

/** The frame Frigate sends: a square region resized to the detector input, RGB, as PIL's default JPEG (quality 75). */
export async function frigateFrame(image: Buffer | string, size = 320): Promise<Buffer> {
  return sharp(image).rotate().resize(size, size, { fit: 'cover' }).removeAlpha().jpeg({ quality: 75 }).toBuffer();
}

/**
 * Frigate's DeepStack detector: POST the frame to `api_url` (default .../v1/vision/detection) with
 * only api_key, then fill at most 20 rows [label, score, y_min/h, x_min/w, y_max/h, x_max/w] from
 * the predictions in order, stopping at the first under 0.4.
 */
export async function frigateDetect(
  server: ServerOptions & { apiUrl?: string },
  frame: Buffer,
  options: { timeoutMs?: number; width?: number; height?: number } = {},
): Promise<{ answer: ClientAnswer; detections: [string, number, number, number, number, number][] }> {
  const { body, contentType } = pythonMultipart([
    { name: 'api_key', value: server.apiKey ?? '' },
    { name: 'image', file: frame, filename: 'image' },
  ]);
  const answer = await post(server.apiUrl ?? `${server.url}/v1/vision/detection`, body, contentType, options.timeoutMs ?? 100);
  if (!answer.body) throw new Error(`JSONDecodeError: the answer (HTTP ${answer.status}) is not JSON`);
  const width = options.width ?? 320;
  const height = options.height ?? 320;
  const detections: [string, number, number, number, number, number][] = [];
  for (const p of (answer.body.predictions ?? []) as Prediction[]) {
    // Every COCO name is in Frigate's label map (it reads "truck" as "car"); a name outside it would also stop the loop.
    if (p.confidence < 0.4 || !p.label) break;
    if (detections.length === 20) throw new Error('IndexError: index 20 is out of bounds for axis 0 with size 20');
    detections.push([p.label === 'truck' ? 'car' : p.label, p.confidence, p.y_min / height, p.x_min / width, p.y_max / height, p.x_max / width]);
  }
  return { answer, detections };
}

async function main(): Promise<void> {
  const root = path.resolve(import.meta.dirname, '..');
  const { values } = parseArgs({
    options: {
      url: { type: 'string', default: `http://127.0.0.1:${process.env.PORT ?? 8080}` },
      'api-key': { type: 'string', default: '' },
      image: { type: 'string', default: path.resolve(root, '../shared/images/car.jpg') },
      'frigate-timeout-ms': { type: 'string', default: '100' },
    },
  });
  const server = { url: values.url.replace(/\/+$/, ''), apiKey: values['api-key'] };
  const image = await readFile(values.image);
  let failed = false;
  const report = async (name: string, work: () => Promise<string>) => {
    try {
      console.log(`${name.padEnd(28)} ${await work()}`);
    } catch (err) {
      failed = true;
      console.log(`${name.padEnd(28)} FAILED: ${(err as Error).message}`);
    }
  };

  await report('Home Assistant detection', async () => {
    const { answer, predictions } = await homeAssistantDetect(server, image);
    const meta = await sharp(image).metadata();
    const outside = predictions.filter((p) => p.x_min < 0 || p.y_min < 0 || p.x_max > meta.width! || p.y_max > meta.height!);
    if (outside.length) throw new Error(`${outside.length} boxes outside the ${meta.width}x${meta.height} image`);
    const labels = predictions.map((p) => `${p.label} ${p.confidence.toFixed(2)}`);
    return `HTTP ${answer.status}, ${Math.round(answer.ms)} ms, ${predictions.length} predictions: ${labels.slice(0, 6).join(', ')}${labels.length > 6 ? ', ...' : ''}`;
  });
  await report('Home Assistant face list', async () => {
    const { answer, faces } = await homeAssistantFaceList(server);
    return `HTTP ${answer.status}, ${faces.length} registered: ${faces.slice(0, 10).join(', ')}`;
  });
  const frame = await frigateFrame(image);
  const timeoutMs = Number(values['frigate-timeout-ms']);
  await report('Frigate (first, cold)', async () => {
    const { answer, detections } = await frigateDetect(server, frame, { timeoutMs: Math.max(timeoutMs, 10_000) });
    return `HTTP ${answer.status}, ${Math.round(answer.ms)} ms, ${detections.length} detections`;
  });
  await report(`Frigate (${timeoutMs} ms timeout) x20`, async () => {
    const times: number[] = [];
    let late = 0;
    let labels: string[] = [];
    for (let i = 0; i < 20; i++) {
      try {
        const { answer, detections } = await frigateDetect(server, frame, { timeoutMs });
        if (answer.status !== 200) throw new Error(`HTTP ${answer.status}: ${JSON.stringify(answer.body).slice(0, 200)}`);
        times.push(answer.ms);
        labels = detections.map((d) => `${d[0]} ${d[1].toFixed(2)}`);
      } catch (err) {
        if (!/timed out/.test((err as Error).message)) throw err;
        late++; // Frigate logs the timeout and goes on with the next frame
      }
    }
    times.sort((a, b) => a - b);
    const summary = `${20 - late}/20 in time, median ${times[Math.floor(times.length / 2)]?.toFixed(1) ?? '-'} ms, max ${times.at(-1)?.toFixed(1) ?? '-'} ms; detections: ${labels.join(', ') || 'none'}`;
    if (late > 0) throw new Error(`${late} of 20 frames over the ${timeoutMs} ms timeout (${summary})`);
    return summary;
  });
  process.exitCode = failed ? 1 : 0;
}

if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(import.meta.filename)) await main();
