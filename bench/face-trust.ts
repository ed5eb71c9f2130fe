/**
 * Issue 21's two measurements, against a real server process on 127.0.0.1 (run from the tree to
 * measure: `node --import tsx bench/face-trust.ts [--repo DIR] [--connections 60] [--mb 20]`):
 *
 * 1. Unauthenticated bodies: with API keys on, N connections each send `api_key=WRONG` and then a
 *    file of M MB to /v1/vision/detection, holding back the closing boundary. The server's RSS
 *    (all its threads): before, while the connections are held, and 10 s after they are closed.
 * 2. Register CPU: one /v1/vision/face/register call with ten different photos of many faces
 *    (the 17-person group photo, flipped and rescaled 1.0-1.9x, ~2-3 MB in all); the server's CPU
 *    time (user + system, all threads) for the call, and its wall time.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { startReplica } from '../scripts/lib/server-process.js';
import { treeCpuMs } from './targets.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const option = (name: string, fallback: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1]! : fallback;
};
const repo = path.resolve(option('repo', path.join(here, '..')));
const connections = Number(option('connections', '60'));
const fileMb = Number(option('mb', '20'));
const modelsDir = path.resolve(process.env.CVSERVE_MODELS_DIR ?? path.join(repo, '..', 'shared', 'models'));
const groupPhoto = readFileSync(path.join(modelsDir, '..', 'images', 'test_face_processing.jpg'));
const KEY = 'k-bench-21';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const dataDir = mkdtempSync(path.join(os.tmpdir(), 'cvserve-bench21-'));
const server = await startReplica({
  cwd: repo,
  modelsDir,
  env: { CVSERVE_API_KEYS: KEY, CVSERVE_DATA_DIR: dataDir, LOG_LEVEL: 'warn', CVSERVE_REQUEST_TIMEOUT_MS: '120000', CVSERVE_BODY_TIMEOUT_MS: '120000' },
}).catch(async () =>
  // LOG_LEVEL above info hides the "listening" line the starter waits for.
  startReplica({ cwd: repo, modelsDir, env: { CVSERVE_API_KEYS: KEY, CVSERVE_DATA_DIR: dataDir, CVSERVE_REQUEST_TIMEOUT_MS: '120000', CVSERVE_BODY_TIMEOUT_MS: '120000' } }),
);
function mb(): number {
  return Math.round(server.rssKiB() / 1024);
}

try {
  await fetch(`${server.url}/v1/vision/detection`, { method: 'POST', headers: { 'X-API-Key': KEY } }).then((r) => r.arrayBuffer());
  await sleep(2000);
  const baseline = mb();

  // 1. Held unauthenticated bodies (--no-bodies: skip).
  if (!args.includes('--no-bodies')) await heldBodies(baseline);

  // 2. Register CPU for ten photos of many faces.
  const photos = await Promise.all(
    Array.from({ length: 10 }, (_, i) =>
      sharp(groupPhoto)
        .flop(i % 2 === 1)
        .resize(Math.round(640 * (1 + i / 10)))
        .jpeg({ quality: 95 })
        .toBuffer(),
    ),
  );
  const form = new FormData();
  form.set('userid', 'bench');
  photos.forEach((p, i) => form.set(`image${i}`, new Blob([p], { type: 'image/jpeg' }), `p${i}.jpg`));
  const bytes = photos.reduce((n, p) => n + p.length, 0);
  const cpu0 = treeCpuMs(server.pid);
  const t0 = performance.now();
  const res = await fetch(`${server.url}/v1/vision/face/register`, { method: 'POST', headers: { 'X-API-Key': KEY }, body: form });
  const body = (await res.json()) as { images?: { message?: string }[] };
  const wall = performance.now() - t0;
  const cpu = treeCpuMs(server.pid) - cpu0;
  console.log(
    `register, 10 photos (${(bytes / 1e6).toFixed(1)} MB, ${body.images?.[0]?.message ?? 'no message'}): ${res.status}, ` +
      `server CPU ${(cpu / 1000).toFixed(1)} s, wall ${(wall / 1000).toFixed(1)} s`,
  );
} finally {
  await server.stop();
  rmSync(dataDir, { recursive: true, force: true });
}

/** N connections, each a wrong form key and then a file, the closing boundary held back; the server's RSS. */
async function heldBodies(baseline: number): Promise<void> {
  const boundary = 'bench21';
  const head = Buffer.from(
    `--${boundary}\r\nContent-Disposition: form-data; name="api_key"\r\n\r\nWRONG\r\n` +
      `--${boundary}\r\nContent-Disposition: form-data; name="image"; filename="x.jpg"\r\nContent-Type: image/jpeg\r\n\r\n`,
  );
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  const file = Buffer.alloc(fileMb * 1_000_000, 0x55);
  const length = head.length + file.length + tail.length;
  const statuses: string[] = [];
  const sockets = await Promise.all(
    Array.from({ length: connections }, () => {
      const socket = net.connect(server.port, '127.0.0.1');
      socket.on('error', () => {});
      socket.on('data', (d) => {
        const m = /^HTTP\/1\.1 (\d{3})/.exec(d.toString('latin1'));
        if (m) statuses.push(m[1]!);
      });
      return new Promise<net.Socket>((resolve) => {
        socket.write(`POST /v1/vision/detection HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=${boundary}\r\nContent-Length: ${length}\r\n\r\n`);
        socket.write(head);
        socket.write(file, () => resolve(socket)); // everything but the closing boundary
        setTimeout(() => resolve(socket), 20_000);
      });
    }),
  );
  let held = 0;
  for (let i = 0; i < 20; i++) {
    held = Math.max(held, mb());
    await sleep(250);
  }
  for (const s of sockets) s.destroy();
  await sleep(10_000);
  const after = mb();
  const counts = statuses.reduce<Record<string, number>>((c, s) => ({ ...c, [s]: (c[s] ?? 0) + 1 }), {});
  console.log(
    `unauthenticated bodies: ${connections} connections x ${fileMb} MB, closing boundary held back: RSS baseline ${baseline} MB, ` +
      `held (peak over 5 s) ${held} MB, 10 s after closing ${after} MB; answers while held: ${JSON.stringify(counts)}`,
  );
}
