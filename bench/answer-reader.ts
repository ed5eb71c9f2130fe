/**
 * Finds where one HTTP/1.1 answer ends in the bytes a socket delivers, without keeping its body:
 * the raw load client (load.ts) needs only the status, whether the connection stays open, and the
 * moment the last body byte arrived. Bodies are framed by Content-Length, chunked transfer coding,
 * or the connection's end (HTTP/1.0 style); 1xx heads are skipped.
 */

export interface Answer {
  status: number;
  /** The server keeps the connection for the next request. */
  keepAlive: boolean;
}

type State =
  | { at: 'head' }
  | { at: 'length'; left: number }
  | { at: 'chunk-size' }
  | { at: 'chunk-data'; left: number }
  | { at: 'trailer' }
  | { at: 'until-close' };

const MAX_HEAD_BYTES = 64 * 1024;
const CRLF = Buffer.from('\r\n');
const HEAD_END = Buffer.from('\r\n\r\n');

export class AnswerReader {
  private state: State = { at: 'head' };
  /** Bytes of a head, chunk-size line or trailer line not yet complete. */
  private pending: Buffer | undefined;
  private status = 0;
  private keepAlive = true;
  /** Bytes of the current answer seen so far (0: none yet, so a closed connection lost nothing of it). */
  received = 0;

  /**
   * Feeds the socket's next bytes; returns the answer once its last byte is among them. Bytes
   * past the answer's end are a protocol error here: the client never pipelines.
   */
  feed(chunk: Buffer): Answer | undefined {
    this.received += chunk.length;
    let data = this.pending ? Buffer.concat([this.pending, chunk]) : chunk;
    this.pending = undefined;
    while (data.length > 0 || this.state.at === 'length' || this.state.at === 'chunk-data') {
      const state = this.state;
      switch (state.at) {
        case 'head': {
          const end = data.indexOf(HEAD_END);
          if (end < 0) return this.keep(data, 'head');
          this.readHead(data.subarray(0, end).toString('latin1'));
          data = data.subarray(end + HEAD_END.length);
          break;
        }
        case 'length': {
          const taken = Math.min(state.left, data.length);
          state.left -= taken;
          data = data.subarray(taken);
          if (state.left === 0) return this.finish(data);
          return undefined;
        }
        case 'chunk-size': {
          const end = data.indexOf(CRLF);
          if (end < 0) return this.keep(data, 'chunk size line');
          const size = Number.parseInt(data.subarray(0, end).toString('latin1').split(';')[0]!.trim(), 16);
          if (!Number.isInteger(size) || size < 0) throw new Error('bad chunk size');
          data = data.subarray(end + CRLF.length);
          // Each chunk's data is followed by CRLF: counted with the data.
          this.state = size === 0 ? { at: 'trailer' } : { at: 'chunk-data', left: size + CRLF.length };
          break;
        }
        case 'chunk-data': {
          const taken = Math.min(state.left, data.length);
          state.left -= taken;
          data = data.subarray(taken);
          if (state.left > 0) return undefined;
          this.state = { at: 'chunk-size' };
          break;
        }
        case 'trailer': {
          const end = data.indexOf(CRLF);
          if (end < 0) return this.keep(data, 'trailer line');
          const line = data.subarray(0, end);
          data = data.subarray(end + CRLF.length);
          if (line.length === 0) return this.finish(data);
          break;
        }
        case 'until-close':
          return undefined;
      }
    }
    return undefined;
  }

  /** The connection ended: the answer read until then, if its framing was the connection's end. */
  end(): Answer | undefined {
    if (this.state.at !== 'until-close') return undefined;
    this.reset();
    return { status: this.status, keepAlive: false };
  }

  private readHead(head: string): void {
    const lines = head.split('\r\n');
    const match = /^HTTP\/1\.([01]) (\d{3})/.exec(lines[0]!);
    if (!match) throw new Error(`not an HTTP/1.x status line: ${lines[0]!.slice(0, 40)}`);
    const status = Number(match[2]);
    if (status >= 100 && status < 200) return; // an interim answer: the real head follows
    const headers = new Map<string, string>();
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(':');
      if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim().toLowerCase());
    }
    this.status = status;
    const connection = headers.get('connection') ?? '';
    this.keepAlive = match[1] === '1' ? !connection.includes('close') : connection.includes('keep-alive');
    const length = headers.get('content-length');
    if (status === 204 || status === 304) this.state = { at: 'length', left: 0 };
    else if (headers.get('transfer-encoding')?.includes('chunked')) this.state = { at: 'chunk-size' };
    else if (length !== undefined) {
      const left = Number(length);
      if (!Number.isSafeInteger(left) || left < 0) throw new Error(`bad Content-Length: ${length}`);
      this.state = { at: 'length', left };
    } else {
      this.state = { at: 'until-close' };
      this.keepAlive = false;
    }
  }

  private keep(data: Buffer, what: string): undefined {
    if (data.length > MAX_HEAD_BYTES) throw new Error(`${what} over ${MAX_HEAD_BYTES} bytes`);
    this.pending = Buffer.from(data);
    return undefined;
  }

  private finish(rest: Buffer): Answer {
    if (rest.length > 0) throw new Error(`${rest.length} bytes after the answer`);
    const answer = { status: this.status, keepAlive: this.keepAlive };
    this.reset();
    return answer;
  }

  private reset(): void {
    this.state = { at: 'head' };
    this.pending = undefined;
    this.received = 0;
  }
}
