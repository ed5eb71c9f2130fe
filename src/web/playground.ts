/**
 * The playground: capabilities and their forms come from /openapi.json (a new resource shows up
 * with no UI code), the image from a file, a drop, a paste or a URL; requests go through the
 * typed client, answers through render.ts.
 */
import { CvServeClient, CvServeError, paramStrings, type Params } from '../client.js';
import { curlCommand } from './curl.js';
import { createFacesPanel, FACES_HASH, type Sample } from './faces-panel.js';
import { $, readAsDataUrl } from './dom.js';
import { renderAnswer, type InputView } from './render.js';
import { routesFrom, type JsonSchema, type ParamSpec, type RouteSpec } from './routes.js';

/** A file (picked, dropped, pasted or a sample: `name` is what curl reads, e.g. data/astronaut.jpg) or a URL. */
type ImageChoice = { kind: 'file'; blob: Blob; name: string; dataUrl: string } | { kind: 'url'; url: string };

const baseUrl = new URL('.', window.location.href).href;
const KEY_STORAGE = 'cvserve.apiKey';
let client = new CvServeClient({ baseUrl });
let routes: RouteSpec[] = [];
let current: RouteSpec | undefined;
let image: ImageChoice | undefined;

/** The API key, when the service wants one: kept for this tab only (sessionStorage), sent as a bearer token. */
function wireApiKey(): void {
  const input = $<HTMLInputElement>('api-key');
  const useKey = (key: string) => {
    client = new CvServeClient({ baseUrl, apiKey: key || undefined });
  };
  input.value = sessionStorage.getItem(KEY_STORAGE) ?? '';
  useKey(input.value.trim());
  input.addEventListener('change', () => {
    const key = input.value.trim();
    if (key) sessionStorage.setItem(KEY_STORAGE, key);
    else sessionStorage.removeItem(KEY_STORAGE);
    useKey(key);
    if (routes.length === 0) void loadRoutes();
  });
}


function hint(schema: JsonSchema): string {
  const bits: string[] = [];
  if (schema.default !== undefined) bits.push(`default ${Array.isArray(schema.default) ? schema.default.join(',') || '(none)' : String(schema.default)}`);
  if (schema.minimum !== undefined || schema.maximum !== undefined) bits.push(`${schema.minimum ?? '…'} – ${schema.maximum ?? '…'}`);
  return bits.join(' · ');
}

function field(p: ParamSpec): HTMLElement {
  const s = p.schema;
  const id = `param-${p.name}`;
  let input: HTMLInputElement | HTMLSelectElement;
  if (s.enum) {
    const select = document.createElement('select');
    if (s.default === undefined) select.append(new Option('(default)', ''));
    for (const v of s.enum) select.append(new Option(String(v), String(v), false, v === s.default));
    input = select;
  } else if (s.type === 'boolean') {
    input = Object.assign(document.createElement('input'), { type: 'checkbox', checked: s.default === true });
  } else if (s.type === 'number' || s.type === 'integer') {
    input = Object.assign(document.createElement('input'), { type: 'number', step: s.type === 'integer' ? '1' : 'any' });
    if (s.minimum !== undefined) input.min = String(s.minimum);
    if (s.maximum !== undefined) input.max = String(s.maximum);
    if (s.default !== undefined) input.value = String(s.default);
  } else {
    input = Object.assign(document.createElement('input'), { type: 'text' });
    if (s.default !== undefined) input.value = Array.isArray(s.default) ? s.default.join(',') : String(s.default);
  }
  input.id = id;
  input.name = p.name;
  const label = Object.assign(document.createElement('label'), { htmlFor: id, textContent: p.name });
  const small = Object.assign(document.createElement('span'), { className: 'hint', textContent: [hint(s), p.description].filter(Boolean).join(' — ') });
  const wrap = document.createElement('div');
  wrap.append(label, input, small);
  return wrap;
}

/** The values that differ from the defaults: what a request (and its curl command) needs to say. */
function paramValues(route: RouteSpec): Params {
  const values: Params = {};
  for (const p of route.params) {
    const input = document.getElementById(`param-${p.name}`) as HTMLInputElement | HTMLSelectElement | null;
    if (!input) continue;
    const def = p.schema.default;
    if (input instanceof HTMLInputElement && input.type === 'checkbox') {
      if (input.checked !== (def === true)) values[p.name] = input.checked;
      continue;
    }
    const v = input.value.trim();
    const defText = Array.isArray(def) ? def.join(',') : def === undefined ? '' : String(def);
    if (v !== '' && v !== defText) values[p.name] = v;
  }
  return values;
}

function selectRoute(route: RouteSpec): void {
  if (running) running.abort();
  current = route;
  for (const b of document.querySelectorAll<HTMLButtonElement>('#routes button')) b.setAttribute('aria-current', String(b.dataset.route === route.name));
  showFacesPanel(false);
  $('work').hidden = false;
  $('route-title').textContent = `/${route.name} — ${route.summary}`;
  $('route-description').textContent = route.description;
  $<HTMLFormElement>('params').replaceChildren(...route.params.map(field));
  $('result').replaceChildren();
  showError(undefined);
  $('timing').textContent = '';
  $('curl-text').hidden = true;
  if (window.location.hash !== `#${route.name}`) history.replaceState(null, '', `#${route.name}`);
  document.querySelector<HTMLButtonElement>(`#routes button[data-route="${CSS.escape(route.name)}"]`)?.scrollIntoView({ block: 'nearest', inline: 'nearest' });
}

/** `#name` in the address bar picks the capability, at load and whenever it changes. */
function routeFromHash(): RouteSpec | undefined {
  return routes.find((r) => `#${r.name}` === window.location.hash);
}

function showError(message: string | undefined, detail?: string): void {
  const box = $('error');
  box.hidden = message === undefined;
  box.replaceChildren();
  if (message === undefined) return;
  const strong = Object.assign(document.createElement('strong'), { textContent: message });
  box.append(strong);
  if (detail) box.append(Object.assign(document.createElement('div'), { className: 'muted', textContent: detail }));
}

async function setFile(file: File | Blob, name?: string): Promise<void> {
  const fileName = name ?? (file instanceof File ? file.name : 'pasted-image.png');
  image = { kind: 'file', blob: file, name: fileName, dataUrl: await readAsDataUrl(file) };
  $<HTMLInputElement>('url').value = '';
  $('image-name').textContent = `${fileName} (${Math.max(1, Math.round(file.size / 1024))} KiB)`;
}

/** The sample photos the service ships (data/), as buttons in the drop zone; none when it ships none. */
async function loadSamples(): Promise<void> {
  let samples: Sample[];
  try {
    const response = await fetch(new URL('playground/samples.json', baseUrl));
    samples = response.ok ? ((await response.json()) as Sample[]) : [];
  } catch {
    samples = [];
  }
  const box = $('samples');
  box.hidden = samples.length === 0;
  faces.samples(samples);
  for (const sample of samples) {
    const button = Object.assign(document.createElement('button'), { type: 'button', textContent: sample.label, title: `data/${sample.file}` });
    button.dataset.sample = sample.file;
    button.addEventListener('click', async () => {
      const response = await fetch(new URL(sample.url, baseUrl));
      if (!response.ok) return showError(`The sample ${sample.file} could not be loaded (HTTP ${response.status}).`);
      // Named as in a clone of the repository, so "Copy as curl" runs there as it is.
      await setFile(await response.blob(), `data/${sample.file}`);
    });
    box.append(button);
  }
}

/** The request in flight, if any: a new run or another capability cancels it. */
let running: AbortController | undefined;

/** A spinner (and a progress bar when the work reports progress) while a request runs. */
function showBusy(text: string | undefined): void {
  $('busy').hidden = text === undefined;
  $('busy-text').textContent = text ?? '';
  const bar = $<HTMLProgressElement>('progress');
  bar.hidden = true;
  bar.removeAttribute('value');
}

/**
 * Progress of long work, e.g. /upscale's tiles done of total, from the answer's text/event-stream
 * (the client's onProgress); until an event comes, the spinner alone shows that the request runs.
 */
export function showProgress(done: number, total: number): void {
  const bar = $<HTMLProgressElement>('progress');
  if (!(total > 0)) return;
  bar.hidden = false;
  bar.max = total;
  bar.value = Math.min(done, total);
  $('busy-text').textContent = `Running… ${done} of ${total}`;
}

function inputView(): InputView | undefined {
  if (!image) return undefined;
  return image.kind === 'file' ? { src: image.dataUrl, label: image.name } : { src: image.url, label: image.url };
}

async function run(): Promise<void> {
  if (!current) return;
  const route = current;
  if (!image) return showError('Choose an image first: a file, a drop, a paste, a sample or a URL.');
  if (image.kind === 'file' && !route.canPost) return showError(`/${route.name} takes images by URL only: give an image URL.`);
  running?.abort();
  const controller = new AbortController();
  running = controller;
  const button = $<HTMLButtonElement>('run');
  button.disabled = true;
  showError(undefined);
  showBusy(`Running /${route.name}…`);
  $('timing').textContent = '';
  $('result').replaceChildren();
  const started = performance.now();
  const params = paramValues(route);
  const source = image.kind === 'url' ? { url: image.url } : image.blob;
  // Image routes (e.g. /upscale) report progress as they go: the bar shows it (the answer is the same).
  const onProgress = route.output === 'image' ? showProgress : undefined;
  const options = { filename: image.kind === 'file' ? image.name.split('/').pop() : undefined, signal: controller.signal, onProgress };
  const drawn = route.drawable && (params.draw === true || params.draw === 'true');
  try {
    // With draw=true the answer is the drawn image; the count comes from the same request as JSON.
    const [answer, boxes] = await Promise.all([
      client.request(route.name, source, params, options),
      drawn ? client.request(route.name, source, { ...params, draw: false }, { ...options, accept: 'application/json', onProgress: undefined }) : undefined,
    ]);
    if (controller.signal.aborted) return;
    $('timing').textContent = `${Math.round(performance.now() - started)} ms · HTTP ${answer.status}`;
    const found = (boxes?.kind === 'json' ? (boxes.body as { result?: unknown })?.result : undefined) as unknown[] | undefined;
    await renderAnswer($('result'), answer, inputView(), { downloadName: route.name, boxCount: Array.isArray(found) ? found.length : undefined });
  } catch (err) {
    if (controller.signal.aborted) return;
    $('timing').textContent = `${Math.round(performance.now() - started)} ms`;
    if (err instanceof CvServeError) {
      const hint = err.status === 401 ? ' Enter a key in the API key field above.' : '';
      showError(err.message + hint, `HTTP ${err.status} · ${err.code}`);
    }
    else showError('The request failed: the service could not be reached.', String((err as Error)?.message ?? err));
  } finally {
    if (running === controller) {
      running = undefined;
      showBusy(undefined);
      button.disabled = false;
    }
  }
}

function outputFile(route: RouteSpec, params: Params): string | undefined {
  const drawn = params.draw === true || params.draw === 'true';
  if (route.output !== 'image' && !drawn) return undefined;
  const chosen = params.format ?? route.params.find((p) => p.name === 'format')?.schema.default;
  const ext = typeof chosen === 'string' && /^(jpeg|png|webp)$/.test(chosen) ? chosen.replace('jpeg', 'jpg') : 'jpg';
  return `${route.name}.${ext}`;
}

function copyCurl(): void {
  if (!current) return;
  const params = paramValues(current);
  const command = curlCommand({
    origin: baseUrl,
    route: current.name,
    image: image?.kind === 'url' ? { kind: 'url', url: image.url } : { kind: 'file', name: image?.name ?? 'image.jpg' },
    params: paramStrings(params),
    outputFile: outputFile(current, params),
    apiKeyFromEnv: $<HTMLInputElement>('api-key').value.trim() !== '',
  });
  const box = $('curl-text');
  box.textContent = command;
  box.hidden = false;
  navigator.clipboard?.writeText(command).then(
    () => ($('timing').textContent = 'curl command copied'),
    () => undefined, // not a secure context or no permission: the command is on the page to copy by hand
  );
}

function wireImageInput(): void {
  const drop = $('drop');
  $<HTMLInputElement>('file').addEventListener('change', (e) => {
    const file = (e.target as HTMLInputElement).files?.[0];
    if (file) void setFile(file);
  });
  $<HTMLInputElement>('url').addEventListener('input', (e) => {
    const url = (e.target as HTMLInputElement).value.trim();
    image = url ? { kind: 'url', url } : undefined;
    $('image-name').textContent = url ? `URL: ${url}` : 'No image yet.';
  });
  for (const type of ['dragenter', 'dragover'] as const) {
    drop.addEventListener(type, (e) => {
      e.preventDefault();
      drop.classList.add('over');
    });
  }
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    const file = e.dataTransfer?.files[0];
    if (file) return void setFile(file);
    const url = e.dataTransfer?.getData('text/uri-list') || e.dataTransfer?.getData('text/plain');
    if (url) {
      $<HTMLInputElement>('url').value = url.trim();
      image = { kind: 'url', url: url.trim() };
      $('image-name').textContent = `URL: ${url.trim()}`;
    }
  });
  document.addEventListener('paste', (e) => {
    const item = [...(e.clipboardData?.items ?? [])].find((i) => i.kind === 'file' && i.type.startsWith('image/'));
    const file = item?.getAsFile();
    if (file) {
      e.preventDefault();
      void setFile(file, file.name && file.name !== 'image.png' ? file.name : `pasted.${file.type.split('/')[1] ?? 'png'}`);
    }
  });
}

/** Leaves the route view for another panel: stops a running request and unselects the route. */
function leaveRoute(): void {
  if (running) running.abort();
  current = undefined;
  $('work').hidden = true;
  for (const b of document.querySelectorAll<HTMLButtonElement>('#routes button')) b.setAttribute('aria-current', 'false');
}

const faces = createFacesPanel({ baseUrl, client: () => client, leaveRoute });
const showFacesPanel = faces.show;

async function main(): Promise<void> {
  wireApiKey();
  wireImageInput();
  void loadSamples();
  faces.wire();
  window.addEventListener('hashchange', () => {
    if (window.location.hash === FACES_HASH) return showFacesPanel(true);
    const wanted = routeFromHash();
    if (wanted && (wanted !== current || $('work').hidden)) selectRoute(wanted);
  });
  $('run').addEventListener('click', () => void run());
  $('curl').addEventListener('click', copyCurl);
  $('params').addEventListener('submit', (e) => {
    e.preventDefault();
    void run();
  });
  await loadRoutes();
}

async function loadRoutes(): Promise<void> {
  const list = $('routes');
  try {
    routes = routesFrom((await client.openapi()) as { paths: Record<string, Record<string, unknown>> });
  } catch (err) {
    const hint = err instanceof CvServeError && err.status === 401 ? ' Enter the API key above.' : '';
    list.replaceChildren(Object.assign(document.createElement('li'), { textContent: `Could not load /openapi.json: ${(err as Error).message}.${hint}` }));
    return;
  }
  list.replaceChildren(
    ...routes.map((r) => {
      const button = Object.assign(document.createElement('button'), { type: 'button' });
      button.dataset.route = r.name;
      button.append(`/${r.name}`, Object.assign(document.createElement('small'), { textContent: r.summary }));
      button.addEventListener('click', () => selectRoute(r));
      const li = document.createElement('li');
      li.append(button);
      return li;
    }),
  );
  if (window.location.hash === FACES_HASH) return showFacesPanel(true);
  const wanted = routeFromHash() ?? routes[0];
  if (wanted) selectRoute(wanted);
}

void main();
