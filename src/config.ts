import os from 'node:os';
import { z } from 'zod';

/**
 * Every setting the service reads from the environment, declared once: its variable, its schema
 * (with the default) and what it is for. `loadConfig` validates all of them at startup; the README's
 * configuration table is generated from the same list (`npm run config:table`).
 */
const cores = Math.max(1, os.availableParallelism?.() ?? os.cpus().length);

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);
const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no', 'on', 'off'])
  .transform((v) => v === 'true' || v === '1' || v === 'yes' || v === 'on');
const list = z.string().transform((v) => v.split(',').map((s) => s.trim()).filter(Boolean));

export const SETTINGS = {
  port: { env: 'PORT', schema: int(0, 65535), default: '8080', doc: 'TCP port to listen on.' },
  host: { env: 'HOST', schema: z.string().min(1), default: '0.0.0.0', doc: 'Address to bind.' },
  logLevel: {
    env: 'LOG_LEVEL',
    schema: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
    default: 'info',
    doc: 'pino log level.',
  },
  modelsDir: { env: 'CVSERVE_MODELS_DIR', schema: z.string().min(1), default: './models', doc: 'Directory holding the model files listed in models/models.json.' },
  modelsFetch: { env: 'CVSERVE_MODELS_FETCH', schema: bool, default: 'on', doc: 'Fetch missing model files in the background at startup (`off` for air-gapped deployments).' },
  pluginsDir: { env: 'CVSERVE_PLUGINS_DIR', schema: z.string(), default: '', doc: 'Directory of plugin resources: every `.js`/`.mjs` module there exporting a resource becomes a route (see README, Plugins). Empty: none.' },
  modelsManifest: { env: 'CVSERVE_MODELS_MANIFEST', schema: z.string(), default: '', doc: 'Model manifest (JSON) to use instead of the built-in `models/models.json`.' },
  modelsBaseUrl: { env: 'CVSERVE_MODELS_BASE_URL', schema: z.union([z.literal(''), z.url({ protocol: /^https?$/ })]), default: '', doc: 'Download model files from `<base>/<file>` (a mirror) instead of each file\'s own URL in the manifest.' },
  modelsFetchTimeoutMs: { env: 'CVSERVE_MODELS_FETCH_TIMEOUT_MS', schema: int(1000, 3_600_000), default: '300000', doc: 'Time limit for downloading one model file.' },
  allowPrivateNetworks: {
    env: 'CVSERVE_ALLOW_PRIVATE_NETWORKS',
    schema: bool,
    default: 'false',
    doc: 'Let `?url=` reach loopback/private/link-local addresses. Only for local development and tests.',
  },
  maxBodyBytes: { env: 'CVSERVE_MAX_BODY_BYTES', schema: int(1024, 1 << 30), default: String(20 * 1024 * 1024), doc: 'Largest request body (raw, multipart file or JSON), checked while streaming → 413.' },
  maxUnauthenticatedBodyBytes: {
    env: 'CVSERVE_MAX_UNAUTHENTICATED_BODY_BYTES',
    schema: int(0, 1 << 30),
    default: String(64 * 1024 * 1024),
    doc: 'With API keys on: the most body bytes all `/v1` requests together may hold before their key is known (a form-field `api_key` sent after a file) → 503 beyond. A key in a header, or a form key before the files, is checked before any file is read; a wrong one is refused (401) without reading further.',
  },
  maxPixels: { env: 'CVSERVE_MAX_PIXELS', schema: int(1, 1_000_000_000), default: String(40_000_000), doc: 'Largest decoded image (width × height), checked from the header before decoding → 413. With CVSERVE_DECODE_MEMORY_BYTES it bounds decoder memory.' },
  maxOutputPixels: { env: 'CVSERVE_MAX_OUTPUT_PIXELS', schema: int(1, 1_000_000_000), default: String(36_000_000), doc: 'Largest image a route may produce (e.g. /upscale) → 413.' },
  maxWorkPixels: {
    env: 'CVSERVE_MAX_WORK_PIXELS',
    schema: int(1, 1_000_000_000),
    default: String(40_000_000),
    doc: 'Largest image a route may make on the way to its answer (a resize target, a padded tile canvas), computed from the header before decoding → 413. Bounds what an extreme aspect ratio can cost (a 1×24000 image scaled to a 256-pixel short side would be 256×6144000).',
  },
  decodeMemoryBytes: {
    env: 'CVSERVE_DECODE_MEMORY_BYTES',
    schema: int(64 * 1024 * 1024, 2 ** 40),
    default: String(2 * 1024 ** 3),
    doc: 'Memory all image decodes in flight may hold together, each estimated from its header (libvips holds several copies of a stored row: a 40000000×1 RGB PNG is estimated at 1.8 GB, RGBA at 3.4 GB). A decode waits until its estimate fits; an image whose estimate alone is larger is refused from the header → 413. The default admits every 8-bit image without alpha that CVSERVE_MAX_PIXELS allows, at any shape.',
  },
  detectMaxPyramidPixels: {
    env: 'CVSERVE_DETECT_MAX_PYRAMID_PIXELS',
    schema: int(1, 10_000_000_000),
    default: String(100_000_000),
    doc: 'Haar detection (/detect, /catfacedetection): most pixels summed over every scale of the search pyramid (grows with the image and as scaleFactor nears 1), computed before decoding → 413 suggesting maxSide or a larger scaleFactor. 100 M is about 10 s of one core.',
  },
  upscaleMaxTiles: {
    env: 'CVSERVE_UPSCALE_MAX_TILES',
    schema: int(1, 100_000),
    default: '128',
    doc: 'Most model tiles one /upscale may run (each a fixed-size model input, about 30 ms of one core for ESPCN\'s 224×224), computed before decoding → 413. The default covers the largest image CVSERVE_MAX_OUTPUT_PIXELS allows at any ordinary aspect ratio.',
  },
  upscaleBatch: {
    env: 'CVSERVE_UPSCALE_BATCH',
    schema: int(0, 256),
    default: '0',
    doc: 'Most super-resolution tiles per model run (/upscale, /v1/vision/enhance, /v1/image/superresolution); 0: the manifest\'s `batch` (8 for ESPCN). Same answer at any value; 1 keeps memory lowest (ESPCN: a batch of 8 tiles holds about 200 MB more, README "Raspberry Pi / small boards").',
  },
  maxFields: { env: 'CVSERVE_MAX_FIELDS', schema: int(1, 10_000), default: '50', doc: 'Most query/form fields accepted in one request.' },
  maxFieldBytes: { env: 'CVSERVE_MAX_FIELD_BYTES', schema: int(16, 1 << 24), default: '65536', doc: 'Largest single non-file form field.' },
  urlMaxBytes: { env: 'CVSERVE_URL_MAX_BYTES', schema: int(1024, 1 << 30), default: String(20 * 1024 * 1024), doc: 'Largest download for `?url=`, enforced while streaming → 413.' },
  urlTimeoutMs: { env: 'CVSERVE_URL_TIMEOUT_MS', schema: int(100, 600_000), default: '10000', doc: 'Total time for a `?url=` download, redirects included → 504.' },
  urlMaxLength: { env: 'CVSERVE_URL_MAX_LENGTH', schema: int(64, 65536), default: '2048', doc: 'Longest `?url=` (and redirect target) accepted → 400.' },
  urlMaxRedirects: { env: 'CVSERVE_URL_MAX_REDIRECTS', schema: int(0, 20), default: '3', doc: 'Redirects followed for `?url=`; each hop is checked again.' },
  opencvWorkers: { env: 'CVSERVE_OPENCV_WORKERS', schema: int(1, 256), default: String(cores), shownDefault: 'cores', doc: 'OpenCV wasm worker threads (default: number of cores).' },
  jpegDecoder: {
    env: 'CVSERVE_JPEG_DECODER',
    schema: z.enum(['libjpeg', 'sharp']),
    default: 'libjpeg',
    doc: 'Who decodes an upright JPEG (gray or YCbCr, no ICC profile to apply) to pixels: `libjpeg`, cvserve\'s addon on the system\'s libjpeg-turbo (native/jpeg, built by `npm ci`; the same pixels as sharp and OpenCV in about half the CPU time), or `sharp`. Where the addon is not built, sharp decodes (the startup log says why).',
  },
  opencvBuild: {
    env: 'CVSERVE_OPENCV_BUILD',
    schema: z.enum(['simd', 'npm']),
    default: 'simd',
    doc: 'Which OpenCV.js the workers load: `simd`, cvserve\'s own WebAssembly-SIMD build in vendor/opencv (OpenCV 4.10, scripts/build-opencv-js.sh; same answers, 1.4–1.8x faster), or `npm`, @techstark/opencv-js 4.12 (the fallback).',
  },
  cannyEngine: {
    env: 'CVSERVE_CANNY',
    schema: z.enum(['native', 'opencv']),
    default: 'native',
    doc: 'Who computes Canny edge maps (/canny, the CLI) in the OpenCV workers: `native`, cvserve\'s addon (native/jpeg/canny.c: OpenCV\'s gray conversion and Canny, the same bytes in about a third of the wasm\'s time), or `opencv`, OpenCV.js. Where the addon is not built, OpenCV.js.',
  },
  detectSplitMinPixels: {
    env: 'CVSERVE_DETECT_SPLIT_MIN_PIXELS',
    schema: int(0, 1_000_000_000),
    default: '250000',
    doc: 'Haar detection on images with at least this many pixels is split by scale across idle OpenCV workers (identical answer, lower latency). 0: never.',
  },
  detectPyramidPixelsPerCall: {
    env: 'CVSERVE_DETECT_PYRAMID_PIXELS_PER_CALL',
    schema: int(100_000, 1_000_000_000),
    default: '4000000',
    doc: 'Haar detection: most search-pyramid pixels one detectMultiScale call lays out in an OpenCV worker\'s wasm heap, which starts at 128 MiB and never shrinks; a larger search runs as several calls by scale, grouped once (identical answer). car.jpg (3.2 MP) with the cat-face cascade leaves a 344 MiB heap at 16 M, 162 MiB at 4 M, 154 MiB at 2 M (README "Raspberry Pi / small boards").',
  },
  opencvPrefetch: {
    env: 'CVSERVE_OPENCV_PREFETCH',
    schema: int(0, 8),
    default: '1',
    doc: 'Tasks a busy OpenCV worker holds besides the one it runs, so it starts the next one without waiting for the main thread to hand it over; a held task moves to a worker that falls idle first. It counts against CVSERVE_OPENCV_MAX_QUEUE. 0: workers take tasks one at a time.',
  },
  opencvMaxQueue: { env: 'CVSERVE_OPENCV_MAX_QUEUE', schema: int(0, 100_000), default: '64', doc: 'Tasks waiting for an OpenCV worker before requests get 503 + Retry-After.' },
  onnxWorkers: {
    env: 'CVSERVE_ONNX_WORKERS',
    schema: int(1, 256),
    default: String(Math.min(cores, 2)),
    shownDefault: 'min(cores, 2)',
    doc: 'ONNX Runtime worker threads per model (a manifest entry\'s `workers` overrides it): how many runs of one model go at once.',
  },
  onnxThreads: { env: 'CVSERVE_ONNX_THREADS', schema: int(1, 256), default: String(cores), shownDefault: 'cores', doc: 'Intra-op threads of an ONNX run that starts while no other worker runs the same model, nor did at its last two starts (a lone request uses every core).' },
  onnxBusyThreads: {
    env: 'CVSERVE_ONNX_BUSY_THREADS',
    schema: z.union([z.literal('auto'), int(1, 256)]),
    default: 'auto',
    doc: 'Intra-op threads of an ONNX run that starts while another worker runs the same model, or within two starts of one that did: each worker then holds a second session with this many threads (equal to CVSERVE_ONNX_THREADS: one session). auto: CVSERVE_ONNX_THREADS / CVSERVE_ONNX_WORKERS, at least 1.',
  },
  onnxBatchMax: {
    env: 'CVSERVE_ONNX_BATCH_MAX',
    schema: int(1, 256),
    default: '8',
    doc: 'Dynamic batching for models with a free batch dimension: most concurrent requests merged into one session.run. 1 turns it off.',
  },
  onnxMemoryArena: {
    env: 'CVSERVE_ONNX_MEMORY_ARENA',
    schema: bool,
    default: 'on',
    doc: 'ONNX Runtime\'s CPU memory arena: each session keeps the buffers of its largest run for the next one (faster). off: buffers are freed after every run, so a large photo\'s memory goes back (with MALLOC_MMAP_THRESHOLD_, README "Raspberry Pi / small boards").',
  },
  onnxBatchWaitMs: {
    env: 'CVSERVE_ONNX_BATCH_WAIT_MS',
    schema: int(0, 1000),
    default: '0',
    doc: 'How long a batch waits for more requests while an ONNX worker is free. 0: never; batches still form from requests that arrive while every worker is busy.',
  },
  onnxPrefetch: {
    env: 'CVSERVE_ONNX_PREFETCH',
    schema: int(0, 8),
    default: '1',
    doc: 'Runs a busy ONNX worker holds besides the one it runs, for models with more than one worker, so it starts the next as soon as it finishes instead of waiting for the main thread to hand it over (on a loaded 2-core machine the main thread often waits for a core while the other one idles). A held run\'s tensors move to its worker without a copy, so it stays there: it fails with 503 if that worker dies before starting it. It counts against CVSERVE_ONNX_MAX_QUEUE. A model with one worker (ESPCN, the text models) never holds one: its runs use every core already. 0: workers take runs one at a time.',
  },
  onnxMaxQueue: { env: 'CVSERVE_ONNX_MAX_QUEUE', schema: int(0, 100_000), default: '64', doc: 'Tasks waiting per ONNX model before requests get 503 + Retry-After.' },
  responseCacheMb: {
    env: 'CVSERVE_RESPONSE_CACHE_MB',
    schema: int(0, 100_000),
    default: '0',
    doc: 'Size of an in-memory LRU of answers keyed by the sha256 of the image and the parameters (repeated requests skip the work; `X-Cache: hit`). 0: off.',
  },
  requestTimeoutMs: { env: 'CVSERVE_REQUEST_TIMEOUT_MS', schema: int(100, 3_600_000), default: '30000', doc: 'Overall time limit for one request → 504.' },
  headersTimeoutMs: {
    env: 'CVSERVE_HEADERS_TIMEOUT_MS',
    schema: int(1000, 600_000),
    default: '20000',
    doc: 'Time a client has to send the request line and headers → 408 (slowloris).',
  },
  bodyTimeoutMs: {
    env: 'CVSERVE_BODY_TIMEOUT_MS',
    schema: int(1000, 3_600_000),
    default: '35000',
    doc: 'Time a client has to send the whole request, body included → 408.',
  },
  keepAliveTimeoutMs: {
    env: 'CVSERVE_KEEP_ALIVE_TIMEOUT_MS',
    schema: int(0, 600_000),
    default: '5000',
    doc: 'How long an idle keep-alive connection stays open between requests.',
  },
  maxConnections: {
    env: 'CVSERVE_MAX_CONNECTIONS',
    schema: int(1, 1_000_000),
    default: '512',
    doc: 'Most open TCP connections; more are closed at once (idle ones included). Keeps file descriptors and memory bounded under a connection flood.',
  },
  shutdownTimeoutMs: { env: 'CVSERVE_SHUTDOWN_TIMEOUT_MS', schema: int(0, 3_600_000), default: '10000', doc: 'How long in-flight requests may take to finish after SIGTERM/SIGINT.' },
  workerMaxHeapMb: {
    env: 'CVSERVE_WORKER_MAX_HEAP_MB',
    schema: int(0, 4096),
    default: '256',
    doc: 'An OpenCV worker whose wasm heap (which only grows, from 128 MB) passes this is replaced between requests; 0: never. Bounds memory kept after one huge image.',
  },
  apiKeys: {
    env: 'CVSERVE_API_KEYS',
    schema: list,
    default: '',
    doc: 'Comma-separated API keys. When any key is set (here or in the file) every route except /ping, /healthz, /readyz (and /metrics if public) needs `Authorization: Bearer <key>` or `X-API-Key: <key>` → 401.',
  },
  apiKeysFile: { env: 'CVSERVE_API_KEYS_FILE', schema: z.string(), default: '', doc: 'File with more API keys, one per line (blank lines and `#` comments ignored); read at startup.' },
  metricsPublic: { env: 'CVSERVE_METRICS_PUBLIC', schema: bool, default: 'false', doc: 'Serve /metrics without an API key when keys are on (e.g. a scraper inside the cluster).' },
  docsPublic: {
    env: 'CVSERVE_DOCS_PUBLIC',
    schema: bool,
    default: 'true',
    doc: 'Serve the playground (`/`), `/docs` and `/openapi.json` without an API key when keys are on: they hold no data, and their calls to the API carry the key the user enters.',
  },
  corsOrigins: {
    env: 'CVSERVE_CORS_ORIGINS',
    schema: list,
    default: '',
    doc: 'Comma-separated origins allowed to call the API from browsers (CORS), e.g. `https://app.example.com`; `*` for any. Empty: CORS off.',
  },
  allowedHosts: {
    env: 'CVSERVE_ALLOWED_HOSTS',
    schema: list,
    default: '',
    doc: 'Comma-separated host names (the `Host` header, port ignored) the service answers to, e.g. `cvserve.lan,192.168.1.20`; others get 421 (`/ping`, `/healthz`, `/readyz` excepted). Empty: any host, which lets a DNS-rebinding web page in a browser on your network reach the service under its own name and read the answers: set it when the service is reachable from browsers without API keys.',
  },
  dataDir: {
    env: 'CVSERVE_DATA_DIR',
    schema: z.string().min(1),
    default: './data',
    doc: 'Directory for runtime state: the face gallery `faces.sqlite` (face descriptors, biometric data) when no database URL is set.',
  },
  databaseUrl: {
    env: 'CVSERVE_DATABASE_URL',
    schema: z.union([z.literal(''), z.string().regex(/^postgres(ql)?:\/\//, 'must be a postgres:// or postgresql:// URL')]),
    default: '',
    doc: 'PostgreSQL URL (`postgres://user:pass@host:5432/db`) for a face gallery shared by several replicas. Unset: SQLite in the data directory.',
  },
  faceWorkers: { env: 'CVSERVE_FACE_WORKERS', schema: int(1, 64), default: '1', doc: 'Face engine worker threads (SSD detector, landmarks, descriptors on tfjs wasm); each uses one core and about 0.5 GB.' },
  faceMaxQueue: { env: 'CVSERVE_FACE_MAX_QUEUE', schema: int(0, 100_000), default: '16', doc: 'Face tasks waiting for a worker before requests get 503 + Retry-After.' },
  faceMaxHeapMb: {
    env: 'CVSERVE_FACE_MAX_HEAP_MB',
    schema: int(0, 16_384),
    default: '768',
    doc: 'A face worker whose wasm heap (which only grows) passes this is replaced between requests; 0: never.',
  },
  facePreload: { env: 'CVSERVE_FACE_PRELOAD', schema: bool, default: 'off', doc: 'Start the face workers and load their models at startup instead of on the first face request.' },
  faceMaxSide: {
    env: 'CVSERVE_FACE_MAX_SIDE',
    schema: int(64, 16_384),
    default: '1920',
    doc: 'Images are shrunk (inside the worker) so their longer side is at most this before face detection; bounds the wasm heap. Boxes come back in original pixels.',
  },
  faceMatchThreshold: {
    env: 'CVSERVE_FACE_MATCH_THRESHOLD',
    schema: z.coerce.number().min(0.1).max(1.2),
    default: '0.58',
    doc: 'Descriptor distance at which a face is still a registered user (maps to confidence 0.67, DeepStack\'s default `min_confidence`); lower is stricter. For faces of 64 px or more; smaller faces use this minus 0.13 (see Faces).',
  },
  faceMaxUsers: { env: 'CVSERVE_FACE_MAX_USERS', schema: int(1, 1_000_000), default: '1000', doc: 'Most users in the face gallery; registering a new one beyond → 409.' },
  faceMaxPhotosPerUser: { env: 'CVSERVE_FACE_MAX_PHOTOS_PER_USER', schema: int(1, 10_000), default: '50', doc: 'Most face descriptors (photos) kept per user; registering more → 409.' },
  faceMaxImages: { env: 'CVSERVE_FACE_MAX_IMAGES', schema: int(1, 100), default: '10', doc: 'Most images in one register call (`image`, `image1`..`imageN`) → 400.' },
  faceMaxFaces: { env: 'CVSERVE_FACE_MAX_FACES', schema: int(1, 500), default: '50', doc: 'Most faces described in one frame (the most confident are kept); bounds recognize time (~50 ms per face).' },
  ocrMaxSide: {
    env: 'CVSERVE_OCR_MAX_SIDE',
    schema: int(32, 4096),
    default: '1600',
    doc: 'Largest long side /ocr and /alpr may resize a photo to for text detection (their maxSide, default 960; small photos are enlarged to it), checked from the header before decoding → 413. Detection time grows with its square.',
  },
  ocrMaxBoxes: {
    env: 'CVSERVE_OCR_MAX_BOXES',
    schema: int(1, 1000),
    default: '50',
    doc: 'Most text boxes /ocr and /alpr recognize in one photo (their maxBoxes; the most confident boxes are kept), checked before the work → 413. Each box is one recognizer run.',
  },
  alprRegion: {
    env: 'CVSERVE_ALPR_REGION',
    schema: z.enum(['us', 'eu', 'any']),
    default: 'any',
    doc: 'Plate layout rules /alpr and /v1/vision/alpr apply when a request names no `region` (clients such as Blue Iris cannot send one): `us`, `eu` or `any` (none).',
  },
  ocrPreload: { env: 'CVSERVE_OCR_PRELOAD', schema: bool, default: 'on', doc: 'Load the text detector and recognizer (/ocr, /alpr, their /v1 routes) at startup; off: on the first request that reads text (the small-board profile measured 19 MiB more RSS after the first /ocr with the ONNX arena off, 136 MiB with it on; README "Raspberry Pi / small boards").' },
  ocrThreads: { env: 'CVSERVE_OCR_THREADS', schema: int(1, 256), default: '1', doc: 'Intra-op threads of the text detector and recognizer sessions (measured: 2 doubled the CPU time for no gain in wall time).' },
} as const;

type Settings = typeof SETTINGS;
export type Config = { [K in keyof Settings]: z.output<Settings[K]['schema']> };

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
  }
}

/** Reads and validates every setting; throws ConfigError naming each bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, overrides: Partial<Config> = {}): Config {
  const out: Record<string, unknown> = {};
  const problems: string[] = [];
  for (const [key, s] of Object.entries(SETTINGS) as [keyof Settings, Settings[keyof Settings]][]) {
    const raw = env[s.env];
    const value = raw === undefined || raw === '' ? s.default : raw;
    const parsed = (s.schema as z.ZodType).safeParse(value);
    if (parsed.success) out[key] = parsed.data;
    else problems.push(`${s.env}=${JSON.stringify(raw)}: ${parsed.error.issues.map((i) => i.message).join('; ')}`);
  }
  if (problems.length) throw new ConfigError(problems);
  return { ...(out as Config), ...overrides };
}

/** Defaults plus overrides, ignoring the environment: for tests and the CLI. */
export function testConfig(overrides: Partial<Config> = {}): Config {
  return loadConfig({}, overrides);
}

/** The README's configuration table, as Markdown. */
export function configTable(): string {
  const rows = Object.values(SETTINGS).map((s) => {
    const shown = 'shownDefault' in s ? s.shownDefault : s.default;
    return `| \`${s.env}\` | ${shown === '' ? '(unset)' : `\`${shown}\``} | ${s.doc} |`;
  });
  return ['| variable | default | what it does |', '|---|---|---|', ...rows].join('\n');
}
