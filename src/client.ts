/**
 * A typed client for cvserve, for Node (≥ 20) and browsers alike: it uses only fetch, FormData,
 * Blob, btoa/atob. One method per route, and every route takes the image the four ways the
 * service does. This module must not import anything at run time (the playground loads it as is).
 */

/** The image: bytes (Blob/File, Uint8Array/Buffer, ArrayBuffer) or `{ url }` for the service to fetch. */
export type ImageArg = Blob | Uint8Array | ArrayBuffer | { url: string };

/** How the image travels: GET ?url=, multipart field `image`, JSON `imageBase64`, or a raw image/* body. */
export type InputWay = 'url' | 'multipart' | 'json' | 'raw';

export type OutputFormat = 'jpeg' | 'png' | 'webp';

/** A parameter value as sent; lists may be arrays (sent comma-separated). */
export type ParamValue = string | number | boolean | readonly string[] | undefined;
export type Params = Record<string, ParamValue>;

export interface RequestOptions {
  /** Default: 'url' for `{ url }`, otherwise 'multipart'. */
  via?: InputWay;
  /** Sent as Accept; e.g. 'application/json' to get images as {imageBase64, format}, 'image/png' to get drawn boxes. */
  accept?: string;
  /**
   * Called with the progress of long work (e.g. /upscale's tiles done of total): the request asks
   * for `text/event-stream` and the answer comes as its last event (an image as {imageBase64, format}).
   */
  onProgress?: (done: number, total: number) => void;
  signal?: AbortSignal;
  headers?: Record<string, string>;
  /** File name sent with multipart uploads. */
  filename?: string;
}

export interface CannyParams { threshold1?: number; threshold2?: number; format?: OutputFormat }
export interface HaarParams { scaleFactor?: number; minNeighbors?: number; minSize?: number; maxSide?: number; format?: OutputFormat }
export interface PredictParams { top?: number }
export interface CatDetectionParams { labels?: string | readonly string[]; threshold?: number; format?: OutputFormat }
export interface UpscaleParams { format?: OutputFormat }
export interface FaceParams { minConfidence?: number; format?: OutputFormat }
export interface OcrParams { minConfidence?: number; charset?: 'latin' | 'all'; maxSide?: number; maxBoxes?: number; format?: OutputFormat }
export interface AlprParams { region?: 'us' | 'eu' | 'any'; minConfidence?: number; vehicles?: boolean; maxSide?: number; maxBoxes?: number; format?: OutputFormat }

export type Box = [number, number, number, number];
export interface DetectionAnswer { status: 'ok'; result: { box: Box; label?: string; score?: number }[] }
export interface PredictAnswer { success: true; predictions: { label: string; probability: number }[] }
export interface FaceDetectionAnswer { status: 'ok'; result: { box: Box; score: number }[] }
export type Polygon = [[number, number], [number, number], [number, number], [number, number]];
export interface OcrAnswer { status: 'ok'; result: { text: string; confidence: number; box: Box; polygon: Polygon }[] }
export interface PlateCandidate { plate: string; confidence: number; matchesTemplate: boolean }
export interface AlprAnswer {
  status: 'ok';
  result: {
    plate: string;
    confidence: number;
    matchesTemplate: boolean;
    region: string;
    box: Box;
    polygon: Polygon;
    candidates: PlateCandidate[];
    vehicle?: { label: string; score: number; box: Box };
  }[];
}
export interface FaceRecognitionAnswer { status: 'ok'; result: { box: Box; userid: string; confidence: number }[] }

/** An image answer: the bytes, whichever way they came (bytes, or {imageBase64} for JSON requests). */
export interface ImageAnswer { bytes: Uint8Array; format: string; contentType: string }

/** Any answer, as `request()` returns it. */
export type Answer =
  | { kind: 'json'; status: number; contentType: string; body: unknown }
  | ({ kind: 'image'; status: number } & ImageAnswer);

/** An error answer from the service: its HTTP status and the body's code and message. */
export class CvServeError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'CvServeError';
  }
}

export interface ClientOptions {
  /** Where the service is, e.g. 'http://127.0.0.1:8080' (in a browser '' means this origin). */
  baseUrl: string;
  /** Sent as `Authorization: Bearer <key>` when the service requires keys. */
  apiKey?: string;
  fetch?: typeof fetch;
}

export function bytesToBase64(bytes: Uint8Array): string {
  let binary = '';
  const chunk = 0x8000;
  for (let i = 0; i < bytes.length; i += chunk) binary += String.fromCharCode(...bytes.subarray(i, i + chunk));
  return btoa(binary);
}

export function base64ToBytes(base64: string): Uint8Array {
  const binary = atob(base64);
  const out = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
  return out;
}

function isUrl(image: ImageArg): image is { url: string } {
  return typeof (image as { url?: unknown }).url === 'string' && !(image instanceof Blob);
}

async function toBlob(image: Exclude<ImageArg, { url: string }>): Promise<Blob> {
  if (image instanceof Blob) return image;
  const bytes = image instanceof Uint8Array ? image : new Uint8Array(image);
  // Copy into a plain ArrayBuffer: a Node Buffer may be a view on a larger shared pool.
  return new Blob([bytes.slice()]);
}

/** Parameter values as strings, lists comma-separated; undefined ones left out. */
export function paramStrings(params: Params = {}): [string, string][] {
  const out: [string, string][] = [];
  for (const [name, value] of Object.entries(params)) {
    if (value === undefined) continue;
    out.push([name, Array.isArray(value) ? value.join(',') : String(value)]);
  }
  return out;
}

export class CvServeClient {
  private readonly baseUrl: string;
  private readonly fetch: typeof fetch;

  constructor(private readonly options: ClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.fetch = options.fetch ?? globalThis.fetch.bind(globalThis);
  }

  /** Calls any route (built-in or plugin) and returns its answer, JSON or image; throws CvServeError on an error answer. */
  async request(route: string, image: ImageArg, params: Params = {}, options: RequestOptions = {}): Promise<Answer> {
    const via = options.via ?? (isUrl(image) ? 'url' : 'multipart');
    const headers: Record<string, string> = { ...this.authHeaders(), ...options.headers };
    if (options.accept) headers.accept = options.accept;
    if (options.onProgress) headers.accept = 'text/event-stream';
    const path = `${this.baseUrl}/${route.replace(/^\/+/, '')}`;
    const fields = paramStrings(params);
    let response: Response;

    if (via === 'url') {
      if (!isUrl(image)) throw new TypeError("via 'url' needs { url }");
      const query = new URLSearchParams([['url', image.url], ...fields]);
      response = await this.fetch(`${path}?${query}`, { method: 'GET', headers, signal: options.signal });
    } else {
      if (isUrl(image)) throw new TypeError(`via '${via}' needs the image bytes, not { url }`);
      const blob = await toBlob(image);
      let body: BodyInit;
      let url = path;
      if (via === 'multipart') {
        const form = new FormData();
        form.append('image', blob, options.filename ?? 'image');
        for (const [name, value] of fields) form.append(name, value);
        body = form;
      } else if (via === 'json') {
        headers['content-type'] = 'application/json';
        const json: Record<string, unknown> = { imageBase64: bytesToBase64(new Uint8Array(await blob.arrayBuffer())) };
        for (const [name, value] of Object.entries(params)) if (value !== undefined) json[name] = value;
        body = JSON.stringify(json);
      } else {
        headers['content-type'] = blob.type && blob.type.startsWith('image/') ? blob.type : 'application/octet-stream';
        if (fields.length) url += `?${new URLSearchParams(fields)}`;
        body = blob;
      }
      response = await this.fetch(url, { method: 'POST', headers, body, signal: options.signal });
    }
    if (options.onProgress && response.ok && (response.headers.get('content-type') ?? '').startsWith('text/event-stream')) {
      return readEventStream(response, options.onProgress);
    }
    return readAnswer(response);
  }

  /** A JSON route's answer; fails if the route answered an image. */
  async json<T>(route: string, image: ImageArg, params?: Params, options: RequestOptions = {}): Promise<T> {
    const answer = await this.request(route, image, params, { accept: 'application/json', ...options });
    if (answer.kind !== 'json') throw new CvServeError(answer.status, 'UNEXPECTED_ANSWER', `/${route} answered an image, expected JSON`);
    return answer.body as T;
  }

  /** An image answer (bytes), whichever way the image was sent. */
  async image(route: string, image: ImageArg, params?: Params, options: RequestOptions = {}): Promise<ImageAnswer> {
    const answer = await this.request(route, image, params, options);
    if (answer.kind === 'image') return { bytes: answer.bytes, format: answer.format, contentType: answer.contentType };
    const body = answer.body as { imageBase64?: unknown; format?: unknown };
    if (typeof body?.imageBase64 !== 'string') throw new CvServeError(answer.status, 'UNEXPECTED_ANSWER', `/${route} answered JSON without an image`);
    const format = String(body.format ?? '');
    return { bytes: base64ToBytes(body.imageBase64), format, contentType: `image/${format}` };
  }

  canny(image: ImageArg, params?: CannyParams, options?: RequestOptions): Promise<ImageAnswer> {
    return this.image('canny', image, params as Params, options);
  }
  detect(image: ImageArg, params?: HaarParams, options?: RequestOptions): Promise<DetectionAnswer> {
    return this.json('detect', image, params as Params, options);
  }
  catfacedetection(image: ImageArg, params?: HaarParams, options?: RequestOptions): Promise<DetectionAnswer> {
    return this.json('catfacedetection', image, params as Params, options);
  }
  predict(image: ImageArg, params?: PredictParams, options?: RequestOptions): Promise<PredictAnswer> {
    return this.json('predict', image, params as Params, options);
  }
  catdetection(image: ImageArg, params?: CatDetectionParams, options?: RequestOptions): Promise<DetectionAnswer> {
    return this.json('catdetection', image, params as Params, options);
  }
  upscale(image: ImageArg, params?: UpscaleParams, options?: RequestOptions): Promise<ImageAnswer> {
    return this.image('upscale', image, params as Params, options);
  }
  /** Faces with the SSD detector and a real confidence each. */
  facedetection(image: ImageArg, params?: FaceParams, options?: RequestOptions): Promise<FaceDetectionAnswer> {
    return this.json('facedetection', image, params as Params, options);
  }
  /** Every face with the registered user it matches (`userid`) or "unknown". */
  facerecognition(image: ImageArg, params?: FaceParams, options?: RequestOptions): Promise<FaceRecognitionAnswer> {
    return this.json('facerecognition', image, params as Params, options);
  }
  /** Every line of text: its text, confidence, box and 4-point polygon. */
  ocr(image: ImageArg, params?: OcrParams, options?: RequestOptions): Promise<OcrAnswer> {
    return this.json('ocr', image, params as Params, options);
  }
  /** Licence plates: the plate, its confidence, box, candidates and vehicle. */
  alpr(image: ImageArg, params?: AlprParams, options?: RequestOptions): Promise<AlprAnswer> {
    return this.json('alpr', image, params as Params, options);
  }
  /** A detection route's input image with the boxes drawn on it. */
  drawn(
    route: 'detect' | 'catfacedetection' | 'catdetection' | 'facedetection' | 'facerecognition' | 'ocr' | 'alpr',
    image: ImageArg,
    params?: HaarParams | CatDetectionParams | FaceParams | OcrParams | AlprParams,
    options?: RequestOptions,
  ): Promise<ImageAnswer> {
    return this.image(route, image, { ...(params as Params), draw: true }, options);
  }

  ping(): Promise<{ success: true }> {
    return this.getJson('ping') as Promise<{ success: true }>;
  }
  /** The service's OpenAPI 3.1 document. */
  openapi(): Promise<Record<string, unknown>> {
    return this.getJson('openapi.json') as Promise<Record<string, unknown>>;
  }

  private async getJson(path: string): Promise<unknown> {
    const answer = await readAnswer(await this.fetch(`${this.baseUrl}/${path}`, { headers: { accept: 'application/json', ...this.authHeaders() } }));
    if (answer.kind !== 'json') throw new CvServeError(answer.status, 'UNEXPECTED_ANSWER', `/${path} did not answer JSON`);
    return answer.body;
  }

  private authHeaders(): Record<string, string> {
    return this.options.apiKey ? { authorization: `Bearer ${this.options.apiKey}` } : {};
  }
}

/** The answer of a `text/event-stream` response: progress events to `onProgress`, then the result (or the error) event. */
async function readEventStream(response: Response, onProgress: (done: number, total: number) => void): Promise<Answer> {
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffered += value;
    let end: number;
    while ((end = buffered.indexOf('\n\n')) >= 0) {
      const block = buffered.slice(0, end);
      buffered = buffered.slice(end + 2);
      const event = /^event: (.*)$/m.exec(block)?.[1];
      const data = JSON.parse(/^data: (.*)$/m.exec(block)?.[1] ?? 'null') as Record<string, unknown>;
      if (event === 'progress') onProgress(Number(data.done), Number(data.total));
      else if (event === 'error') throw new CvServeError(response.status, String(data.code ?? 'HTTP_ERROR'), String(data.message ?? 'failed'));
      else if (event === 'result') {
        void reader.cancel();
        if (typeof data.imageBase64 === 'string') {
          const format = String(data.format ?? '');
          return { kind: 'image', status: response.status, bytes: base64ToBytes(data.imageBase64), format, contentType: `image/${format}` };
        }
        return { kind: 'json', status: response.status, contentType: 'application/json', body: data };
      }
    }
  }
  throw new CvServeError(response.status, 'UNEXPECTED_ANSWER', 'the event stream ended without a result');
}

async function readAnswer(response: Response): Promise<Answer> {
  const contentType = (response.headers.get('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
  if (!response.ok) {
    let code = 'HTTP_ERROR';
    let message = `HTTP ${response.status}`;
    try {
      const body = (await response.json()) as { code?: string; message?: string };
      code = body.code ?? code;
      message = body.message ?? message;
    } catch {
      // not a JSON error body (a proxy's page, say): keep the status
    }
    throw new CvServeError(response.status, code, message);
  }
  if (contentType.startsWith('image/')) {
    const bytes = new Uint8Array(await response.arrayBuffer());
    return { kind: 'image', status: response.status, bytes, contentType, format: contentType.slice('image/'.length) };
  }
  const text = await response.text();
  let body: unknown = text;
  if (contentType === 'application/json' || contentType.endsWith('+json')) body = JSON.parse(text);
  return { kind: 'json', status: response.status, contentType, body };
}
