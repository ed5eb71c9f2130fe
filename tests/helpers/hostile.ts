import http from 'node:http';
import net from 'node:net';
import sharp from 'sharp';
import { pngDeclaring } from './forge.js';
import { isLoopbackAddress } from './net.js';
import { image } from './paths.js';

/**
 * Hostile inputs and a hostile image server for the hostile-input and property suites. The server
 * listens on 127.0.0.77 only; names resolve through a fixed table, never real DNS; the connect
 * guard refuses anything outside 127.0.0.0/8 and ::1, so no test can reach another machine.
 */

export const HOSTILE_HOST = '127.0.0.77';

export { ConnectGuard, tableLookup } from './net.js';
export const isLoopback = isLoopbackAddress;

/** A GIF of `frames` 1x1 frames on a side x side canvas, written byte by byte (no encoder merges frames). */
export function manyFrameGif(frames: number, side = 64): Buffer {
  const header = Buffer.alloc(13);
  header.write('GIF89a', 0, 'ascii');
  header.writeUInt16LE(side, 6);
  header.writeUInt16LE(side, 8);
  header[10] = 0x80; // global colour table of 2 entries
  const parts: Buffer[] = [header, Buffer.from([0, 0, 0, 255, 255, 255])];
  parts.push(Buffer.from([0x21, 0xff, 0x0b, ...Buffer.from('NETSCAPE2.0'), 0x03, 0x01, 0x00, 0x00, 0x00]));
  for (let i = 0; i < frames; i++) {
    const descriptor = Buffer.alloc(10);
    descriptor[0] = 0x2c;
    descriptor.writeUInt16LE(i % side, 1);
    descriptor.writeUInt16LE(Math.floor(i / side) % side, 3);
    descriptor.writeUInt16LE(1, 5);
    descriptor.writeUInt16LE(1, 7);
    // Graphic control (10 ms), the descriptor, then one pixel of colour 1 as LZW (clear, 1, end).
    parts.push(Buffer.from([0x21, 0xf9, 0x04, 0x00, 0x01, 0x00, 0x00, 0x00]), descriptor, Buffer.from([0x02, 0x02, 0x4c, 0x01, 0x00]));
  }
  parts.push(Buffer.from([0x3b]));
  return Buffer.concat(parts);
}

/**
 * A real JPEG whose frame header (SOF) is patched to declare width x height: every marker a decoder
 * needs before the pixels is valid, so only the pixel limit can stop it.
 */
export function jpegDeclaringWithTables(jpeg: Buffer, width: number, height: number): Buffer {
  const out = Buffer.from(jpeg);
  for (let i = 2; i + 9 < out.length; ) {
    if (out[i] !== 0xff) throw new Error('not a JPEG marker');
    const marker = out[i + 1]!;
    const length = out.readUInt16BE(i + 2);
    if (marker >= 0xc0 && marker <= 0xc2) {
      out.writeUInt16BE(height, i + 5);
      out.writeUInt16BE(width, i + 7);
      return out;
    }
    i += 2 + length;
  }
  throw new Error('no SOF marker');
}

export interface Payloads {
  /** A small valid photo (JPEG) that every route answers quickly. */
  good: Buffer;
  truncatedJpeg: Buffer;
  truncatedPng: Buffer;
  truncatedWebp: Buffer;
  notAnImage: Buffer;
  svg: Buffer;
  pngBomb: Buffer;
  jpegBomb: Buffer;
  gif: Buffer;
}

export async function payloads(): Promise<Payloads> {
  const photo = sharp(image('test_face_processing.jpg')).resize(96, 72);
  const jpeg = await photo.clone().jpeg({ quality: 85 }).toBuffer();
  const png = await photo.clone().png().toBuffer();
  const webp = await photo.clone().webp().toBuffer();
  return {
    good: jpeg,
    truncatedJpeg: jpeg.subarray(0, Math.floor(jpeg.length / 2)),
    truncatedPng: png.subarray(0, Math.floor(png.length / 2)),
    truncatedWebp: webp.subarray(0, Math.floor(webp.length / 2)),
    notAnImage: Buffer.from('This is a plain text file wearing a .jpg name.\n'.repeat(20)),
    svg: Buffer.from(
      '<?xml version="1.0"?>\n<!DOCTYPE svg [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n' +
        '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="64" height="64">' +
        '<image xlink:href="http://169.254.169.254/latest/meta-data/" width="64" height="64"/><text>&xxe;</text></svg>',
    ),
    pngBomb: pngDeclaring(50_000, 50_000),
    jpegBomb: jpegDeclaringWithTables(await sharp({ create: { width: 16, height: 16, channels: 3, background: '#808080' } }).jpeg().toBuffer(), 65_000, 65_000),
    gif: manyFrameGif(4000),
  };
}

export interface HostileServer {
  port: number;
  /** A URL on the hostile server, named `images.test` (resolved to 127.0.0.77 by the table lookup). */
  url(path: string): string;
  /** Serves these bytes at /payload/<name>. */
  serve(name: string, bytes: Buffer): void;
  close(): Promise<void>;
}

/**
 * The image server a hostile ?url= points at: payloads, redirects into private addresses, a body
 * that trickles forever, a Content-Length over the limit, and a raw socket that sends more than it declares.
 */
export async function hostileServer(options: { jpeg: Buffer; oversize: number }): Promise<HostileServer> {
  const payloads = new Map<string, Buffer>();
  const sockets = new Set<net.Socket>();
  const timers = new Set<NodeJS.Timeout>();
  let port = 0;
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    if (path.startsWith('/payload/')) {
      const bytes = payloads.get(path.slice('/payload/'.length));
      if (!bytes) return void res.writeHead(404).end();
      res.writeHead(200, { 'Content-Type': 'image/jpeg', 'Content-Length': bytes.length }).end(bytes);
      return;
    }
    const redirect = (location: string) => res.writeHead(302, { Location: location }).end();
    switch (path) {
      case '/redirect/metadata':
        return redirect('http://169.254.169.254/latest/meta-data/iam/security-credentials/');
      case '/redirect/chain':
        return redirect('/redirect/chain-2');
      case '/redirect/chain-2':
        return redirect('http://internal.test/admin.jpg');
      case '/redirect/loopback6':
        return redirect(`http://[::1]:${port}/payload/good`);
      case '/redirect/file':
        return redirect('file:///etc/passwd');
      case '/trickle': {
        // 16 bytes every 20 ms of a body that declares 512 KiB: it keeps coming and never ends.
        res.writeHead(200, { 'Content-Type': 'image/jpeg', 'Content-Length': 512 * 1024 });
        res.write(options.jpeg.subarray(0, 16));
        const timer = setInterval(() => {
          if (res.destroyed) return void clearInterval(timer);
          res.write(Buffer.alloc(16, 0x20));
        }, 20);
        timers.add(timer);
        return;
      }
      case '/oversize':
        res.writeHead(200, { 'Content-Type': 'image/jpeg', 'Content-Length': options.oversize });
        res.write(options.jpeg);
        return; // never finishes: the download must stop at the declared size alone
      default:
        res.writeHead(404).end();
    }
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  // Declares 100 bytes of a JPEG, then sends the whole file: the extra bytes must not be read as image.
  const liar = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.once('data', () => {
      socket.write('HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nContent-Length: 100\r\n\r\n');
      socket.end(options.jpeg);
    });
  });
  await new Promise<void>((r) => server.listen(0, HOSTILE_HOST, r));
  await new Promise<void>((r) => liar.listen(0, HOSTILE_HOST, r));
  port = (server.address() as net.AddressInfo).port;
  const liarPort = (liar.address() as net.AddressInfo).port;
  return {
    port,
    url: (path: string) => (path === '/liar' ? `http://images.test:${liarPort}/` : `http://images.test:${port}${path}`),
    serve: (name, bytes) => payloads.set(name, bytes),
    async close() {
      for (const t of timers) clearInterval(t);
      for (const s of sockets) s.destroy();
      await Promise.all([new Promise((r) => server.close(r)), new Promise((r) => liar.close(r))]);
    },
  };
}
