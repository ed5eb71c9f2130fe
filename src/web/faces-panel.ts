/**
 * The playground's Faces panel: register photos under a name, the gallery (list, delete), and
 * recognize a photo with the names drawn (the DeepStack face routes and /facerecognition).
 */
import { CvServeError, type CvServeClient } from '../client.js';
import { $, readAsDataUrl } from './dom.js';
import { renderAnswer } from './render.js';

export type Sample = { file: string; label: string; url: string };
type Photo = { blob: Blob; name: string; dataUrl: string };

/** What the panel needs of the page. */
export interface PanelPage {
  baseUrl: string;
  /** The page's client (it changes when the API key does). */
  client(): CvServeClient;
  /** Leaves the route view (stops its request, unselects the route). */
  leaveRoute(): void;
}


let page: PanelPage;
let baseUrl = '';

export const FACES_HASH = '#faces';
const facePhotos: { register?: Photo; recognize?: Photo } = {};

function showFacesPanel(show: boolean): void {
  $('faces').hidden = !show;
  document.querySelector('#panels button[data-panel="faces"]')?.setAttribute('aria-current', String(show));
  if (!show) return;
  page.leaveRoute();
  if (window.location.hash !== FACES_HASH) history.replaceState(null, '', FACES_HASH);
  void refreshGallery();
}

function showFaceError(message: string | undefined): void {
  const box = $('face-error');
  box.hidden = message === undefined;
  box.textContent = message ?? '';
}

/** A DeepStack face route: multipart form fields (and the key as DeepStack's api_key/admin_key fields), its JSON back. */
async function faceApi(route: 'register' | 'list' | 'delete', fields: Record<string, string>, photo?: Photo): Promise<Record<string, unknown>> {
  const form = new FormData();
  for (const [name, value] of Object.entries(fields)) form.append(name, value);
  const key = $<HTMLInputElement>('api-key').value.trim();
  if (key) {
    form.append('api_key', key);
    form.append('admin_key', key);
  }
  if (photo) form.append('image', photo.blob, photo.name.split('/').pop() || 'photo.jpg');
  const response = await fetch(new URL(`v1/vision/face/${route}`, baseUrl), { method: 'POST', body: form });
  const body = (await response.json().catch(() => ({}))) as Record<string, unknown>;
  if (!response.ok || body.success === false) {
    const hint = response.status === 401 ? ' Enter a key in the API key field above.' : '';
    throw new Error(`${String(body.error ?? body.message ?? `HTTP ${response.status}`)}${hint}`);
  }
  return body;
}

async function setFacePhoto(which: 'register' | 'recognize', blob: Blob, name: string): Promise<void> {
  facePhotos[which] = { blob, name, dataUrl: await readAsDataUrl(blob) };
  $(`face-${which}-name`).textContent = `${name} (${Math.max(1, Math.round(blob.size / 1024))} KiB)`;
}

function faceSamples(samples: Sample[]): void {
  for (const box of document.querySelectorAll<HTMLElement>('.face-samples')) {
    const which = box.dataset.for as 'register' | 'recognize';
    box.replaceChildren(...(samples.length ? ['or a sample: '] : []));
    for (const sample of samples) {
      const button = Object.assign(document.createElement('button'), { type: 'button', textContent: sample.label, title: `data/${sample.file}` });
      button.dataset.sample = sample.file;
      button.addEventListener('click', async () => {
        const response = await fetch(new URL(sample.url, baseUrl));
        if (!response.ok) return showFaceError(`The sample ${sample.file} could not be loaded (HTTP ${response.status}).`);
        await setFacePhoto(which, await response.blob(), `data/${sample.file}`);
      });
      box.append(button);
    }
  }
}

async function refreshGallery(): Promise<void> {
  const list = $('face-users');
  let users: { userid: string; photos?: number }[];
  try {
    const body = await faceApi('list', {});
    users = Array.isArray(body.users) ? (body.users as typeof users) : ((body.faces as string[] | undefined) ?? []).map((userid) => ({ userid }));
  } catch (err) {
    list.replaceChildren(Object.assign(document.createElement('li'), { className: 'muted', textContent: `The gallery could not be read: ${(err as Error).message}` }));
    return;
  }
  if (users.length === 0) {
    list.replaceChildren(Object.assign(document.createElement('li'), { className: 'muted', textContent: 'Nobody registered yet.' }));
    return;
  }
  list.replaceChildren(
    ...users.map((u) => {
      const li = document.createElement('li');
      const del = Object.assign(document.createElement('button'), { type: 'button', textContent: 'Delete' });
      del.setAttribute('aria-label', `Delete ${u.userid}`);
      del.addEventListener('click', async () => {
        del.disabled = true;
        try {
          await faceApi('delete', { userid: u.userid });
          showFaceError(undefined);
        } catch (err) {
          showFaceError(`Delete failed: ${(err as Error).message}`);
        }
        await refreshGallery();
      });
      const photos = u.photos === undefined ? '' : `${u.photos} ${u.photos === 1 ? 'photo' : 'photos'}`;
      li.append(Object.assign(document.createElement('span'), { className: 'name', textContent: u.userid }), Object.assign(document.createElement('span'), { className: 'photos', textContent: photos }), del);
      return li;
    }),
  );
}

async function registerFace(): Promise<void> {
  const userid = $<HTMLInputElement>('face-userid').value.trim();
  const photo = facePhotos.register;
  const out = $('face-register-result');
  out.className = '';
  if (!userid) return void (out.textContent = 'Enter a name first.');
  if (!photo) return void (out.textContent = 'Choose a photo first: a file or a sample.');
  const button = $<HTMLButtonElement>('face-register-run');
  button.disabled = true;
  out.textContent = 'Registering…';
  try {
    const body = await faceApi('register', { userid }, photo);
    const images = (body.images as { status: string; message?: string }[] | undefined) ?? [];
    const note = images.map((i) => i.message).filter(Boolean).join('; ');
    out.className = 'ok';
    out.textContent = Number(body.added ?? 1) > 0 ? `Registered ${userid}: 1 photo added.${note ? ` ${note}.` : ''}` : `${userid} already has this photo: nothing added.`;
  } catch (err) {
    out.textContent = `Not registered: ${(err as Error).message}`;
  } finally {
    button.disabled = false;
  }
  await refreshGallery();
}

async function recognizeFaces(): Promise<void> {
  const photo = facePhotos.recognize;
  if (!photo) return showFaceError('Choose a photo to recognize first: a file or a sample.');
  const button = $<HTMLButtonElement>('face-recognize-run');
  button.disabled = true;
  showFaceError(undefined);
  $('face-result').replaceChildren();
  $('face-timing').textContent = 'Recognizing…';
  const started = performance.now();
  try {
    const minConfidence = $<HTMLInputElement>('face-min-confidence').value.trim();
    const answer = await page.client().request('facerecognition', photo.blob, minConfidence ? { minConfidence } : {}, { filename: photo.name.split('/').pop(), accept: 'application/json' });
    $('face-timing').textContent = `${Math.round(performance.now() - started)} ms`;
    const faces = ((answer.kind === 'json' ? (answer.body as { result?: unknown }).result : undefined) ?? []) as { box: [number, number, number, number]; userid: string; confidence: number }[];
    const known = faces.filter((f) => f.userid !== 'unknown').map((f) => f.userid);
    // render.ts captions /facerecognition's boxes with the person's name (and the confidence of a match).
    await renderAnswer($('face-result'), answer, { src: photo.dataUrl, label: photo.name });
    const summary = Object.assign(document.createElement('p'), {
      className: 'summary',
      textContent: faces.length === 0 ? 'No face found.' : `${known.length} of ${faces.length} ${faces.length === 1 ? 'face' : 'faces'} recognized${known.length ? `: ${known.join(', ')}` : ''}`,
    });
    $('face-result').querySelector('.summary')?.replaceWith(summary);
  } catch (err) {
    $('face-timing').textContent = '';
    showFaceError(err instanceof CvServeError ? `${err.message} (HTTP ${err.status} · ${err.code})` : `The request failed: ${(err as Error).message}`);
  } finally {
    button.disabled = false;
  }
}

function wireFaces(): void {
  document.querySelector('#panels button[data-panel="faces"]')?.addEventListener('click', () => showFacesPanel(true));
  for (const which of ['register', 'recognize'] as const) {
    $<HTMLInputElement>(`face-${which}-file`).addEventListener('change', (e) => {
      const file = (e.target as HTMLInputElement).files?.[0];
      if (file) void setFacePhoto(which, file, file.name);
    });
  }
  $('face-register').addEventListener('submit', (e) => {
    e.preventDefault();
    void registerFace();
  });
  $('face-recognize').addEventListener('submit', (e) => {
    e.preventDefault();
    void recognizeFaces();
  });
  $('face-refresh').addEventListener('click', () => void refreshGallery());
}

export function createFacesPanel(of: PanelPage): { show(show: boolean): void; samples(samples: Sample[]): void; wire(): void } {
  page = of;
  baseUrl = of.baseUrl;
  return { show: showFacesPanel, samples: faceSamples, wire: wireFaces };
}
