/**
 * Draws an answer the way a person wants to see it, decided by its shape, not by the route:
 * boxes over the input for any JSON with `result[].box`, bars for `predictions[]`, the output next
 * to the input (with a zoomed detail) for images, and the JSON itself for anything else.
 */
import type { Answer } from '../client.js';

/** The input as the page shows it: a data: URL (file) or the image's URL. */
export interface InputView {
  src: string;
  label: string;
}

export interface RenderOptions {
  /** File name offered by the download link of an image answer, without extension (e.g. the route's name). */
  downloadName?: string;
  /** Boxes found, when the answer is the input with its boxes drawn (draw=true). */
  boxCount?: number;
}

type Detection = { box: [number, number, number, number]; label?: unknown; score?: unknown; userid?: unknown; confidence?: unknown; text?: unknown; plate?: unknown };

/** A box's caption: its label (or the person for /facerecognition, the text for /ocr, the plate for /alpr) and score (or the confidence; none for "unknown"). */
function caption(d: Detection): { name?: string; score?: number } {
  const name = [d.label, d.userid, d.plate, d.text].find((v): v is string => typeof v === 'string');
  const score = typeof d.score === 'number' ? d.score : typeof d.confidence === 'number' && d.userid !== 'unknown' ? d.confidence : undefined;
  return { name, score };
}

const SVG = 'http://www.w3.org/2000/svg';
const PALETTE = ['#00e400', '#ff3838', '#2c99ff', '#ffb21d', '#cf3cff', '#00d4bb', '#ff6fd8', '#a4e600', '#ff8a3d', '#6e7bff'];
/** How much larger than its natural size the zoomed detail shows the output. */
const ZOOM = 2;

function el<K extends keyof HTMLElementTagNameMap>(tag: K, props: Partial<HTMLElementTagNameMap[K]> = {}, ...children: (Node | string)[]): HTMLElementTagNameMap[K] {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children);
  return node;
}

function svg<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Record<string, string | number>): SVGElementTagNameMap[K] {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  return node;
}

function colorFor(label: string | undefined): string {
  if (!label) return PALETTE[0]!;
  let h = 0;
  for (let i = 0; i < label.length; i++) h = (h * 31 + label.charCodeAt(i)) >>> 0;
  return PALETTE[h % PALETTE.length]!;
}

function loadImage(src: string): Promise<HTMLImageElement> {
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => resolve(img);
    img.onerror = () => reject(new Error('the image could not be shown'));
    img.src = src;
  });
}

function bytesToDataUrl(bytes: Uint8Array, contentType: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result));
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(new Blob([bytes.slice()], { type: contentType }));
  });
}

function isDetection(v: unknown): v is Detection {
  const box = (v as Detection)?.box;
  return Array.isArray(box) && box.length === 4 && box.every((n) => typeof n === 'number');
}

function rawJson(body: unknown): HTMLElement {
  return el('details', {}, el('summary', {}, 'JSON answer'), el('pre', {}, JSON.stringify(body, null, 2)));
}

function boxesFound(count: number): HTMLElement {
  return el('p', { className: 'summary' }, `${count} ${count === 1 ? 'box' : 'boxes'} found`);
}

/** The input image with a caption, as the answers that do not change it show it. */
async function inputFigure(input: InputView): Promise<HTMLElement | undefined> {
  const img = await loadImage(input.src).catch(() => undefined);
  if (!img) return undefined;
  img.alt = input.label;
  return el('figure', { className: 'input' }, el('figcaption', {}, `${input.label} · ${img.naturalWidth}×${img.naturalHeight}`), el('div', { className: 'stage' }, img));
}

async function renderBoxes(target: HTMLElement, detections: Detection[], input: InputView | undefined): Promise<void> {
  const count = detections.length;
  target.append(boxesFound(count));
  if (!input) return;
  const img = await loadImage(input.src);
  const w = img.naturalWidth;
  const h = img.naturalHeight;
  const overlay = svg('svg', { viewBox: `0 0 ${w} ${h}`, preserveAspectRatio: 'none', 'aria-label': `${count} boxes` });
  // Label text in image pixels, sized so it reads at the size the image is shown.
  const font = Math.max(12, Math.round(Math.max(w, h) / 45));
  const tags: [SVGRectElement, SVGTextElement][] = [];
  for (const d of detections) {
    const [x1, y1, x2, y2] = d.box;
    const { name, score } = caption(d);
    const label = [name ?? '', score !== undefined ? `${Math.round(score * 100)}%` : ''].filter(Boolean).join(' ');
    const color = colorFor(name);
    overlay.append(svg('rect', { class: 'box', x: x1, y: y1, width: Math.max(0, x2 - x1), height: Math.max(0, y2 - y1), stroke: color }));
    if (label) {
      const tagH = Math.round(font * 1.35);
      const tagY = y1 - tagH >= 0 ? y1 - tagH : y1;
      const tag = svg('rect', { class: 'tag', x: x1, y: tagY, width: Math.round(label.length * font * 0.62 + font * 0.6), height: tagH, fill: color });
      const text = svg('text', { x: x1 + font * 0.3, y: tagY + font * 1.02 });
      text.setAttribute('font-size', String(font));
      text.textContent = label;
      overlay.append(tag, text);
      tags.push([tag, text]);
    }
  }
  img.alt = input.label;
  target.append(el('figure', {}, el('figcaption', {}, `${input.label} · ${w}×${h}`), el('div', { className: 'stage' }, img, overlay)));
  // Now that the text is laid out, fit each tag to its label.
  for (const [tag, text] of tags) tag.setAttribute('width', String(Math.ceil(text.getComputedTextLength() + font * 0.6)));
}

async function renderBars(target: HTMLElement, predictions: Record<string, unknown>[], input: InputView | undefined): Promise<void> {
  const list = el('ul', { className: 'bars' });
  for (const p of predictions) {
    const label = String(p.label ?? p.className ?? p.name ?? Object.values(p).find((v) => typeof v === 'string') ?? '?');
    const value = Number(p.probability ?? p.score ?? p.confidence ?? Object.values(p).find((v) => typeof v === 'number') ?? 0);
    const fill = el('span');
    fill.style.width = `${Math.max(0, Math.min(1, value)) * 100}%`;
    list.append(el('li', {}, el('span', { className: 'label', title: label }, label), el('span', { className: 'bar' }, fill), el('span', { className: 'value' }, `${(value * 100).toFixed(1)}%`)));
  }
  const figure = input ? await inputFigure(input) : undefined;
  target.append(el('div', { className: 'classified' }, ...(figure ? [figure] : []), list));
}

function extensionOf(format: string): string {
  return format === 'jpeg' ? 'jpg' : format.replace(/[^a-z0-9]/g, '') || 'img';
}

/** Output beside input, and below them the same detail of both, magnified; the pointer picks the detail. */
async function renderSideBySide(target: HTMLElement, outputSrc: string, format: string, outputNote: string, input: InputView | undefined, options: RenderOptions): Promise<void> {
  const out = await loadImage(outputSrc);
  out.alt = 'output';
  const ow = out.naturalWidth;
  const oh = out.naturalHeight;
  const figures: HTMLElement[] = [];
  let inImg: HTMLImageElement | undefined;
  if (input) {
    inImg = await loadImage(input.src).catch(() => undefined);
    if (inImg) {
      inImg.alt = input.label;
      figures.push(el('figure', {}, el('figcaption', {}, `Input · ${inImg.naturalWidth}×${inImg.naturalHeight}`), inImg));
    }
  }
  figures.push(el('figure', {}, el('figcaption', {}, `Output · ${ow}×${oh} · ${outputNote}`), out));
  const download = el('a', { className: 'download', href: outputSrc, download: `${options.downloadName ?? 'output'}.${extensionOf(format)}` }, `Download ${extensionOf(format)}`);
  if (options.boxCount !== undefined) target.append(boxesFound(options.boxCount));
  target.append(el('div', { className: 'pair' }, ...figures), el('p', { className: 'download-row' }, download));

  const panes: HTMLElement[] = [];
  const zoomFigures = [inImg, out]
    .filter((i): i is HTMLImageElement => !!i)
    .map((img) => {
      const pane = el('div', { className: img === out ? 'zoom-out' : 'zoom-in pixelated', title: 'Move the pointer over an image to choose the detail' });
      pane.style.backgroundImage = `url("${img.src}")`;
      pane.style.backgroundSize = `${ow * ZOOM}px ${oh * ZOOM}px`;
      panes.push(pane);
      return el('figure', {}, el('figcaption', {}, img === out ? 'Output, detail' : 'Input, same detail'), pane);
    });
  const zoom = el('div', { className: 'zoom' }, ...zoomFigures);
  target.append(el('p', { className: 'muted' }, `Detail at ${ZOOM}× the output's size (point at or touch an image to move it):`), zoom);
  const focus = (fx: number, fy: number) => {
    for (const pane of panes) {
      const x = pane.clientWidth / 2 - fx * ow * ZOOM;
      const y = pane.clientHeight / 2 - fy * oh * ZOOM;
      pane.style.backgroundPosition = `${Math.round(x)}px ${Math.round(y)}px`;
    }
  };
  for (const img of [inImg, out]) {
    img?.addEventListener('pointermove', (e) => {
      const r = img.getBoundingClientRect();
      focus((e.clientX - r.left) / r.width, (e.clientY - r.top) / r.height);
    });
  }
  requestAnimationFrame(() => focus(0.5, 0.5));
}

export async function renderAnswer(target: HTMLElement, answer: Answer, input: InputView | undefined, options: RenderOptions = {}): Promise<void> {
  target.replaceChildren();
  if (answer.kind === 'image') {
    const src = await bytesToDataUrl(answer.bytes, answer.contentType);
    await renderSideBySide(target, src, answer.format, `${answer.format} · ${(answer.bytes.length / 1024).toFixed(0)} KiB`, input, options);
    return;
  }
  const body = answer.body as Record<string, unknown> | string;
  if (typeof body === 'object' && body !== null) {
    if (Array.isArray(body.result) && body.result.every(isDetection)) {
      await renderBoxes(target, body.result, input);
    } else if (Array.isArray(body.predictions)) {
      await renderBars(target, body.predictions as Record<string, unknown>[], input);
    } else if (typeof body.imageBase64 === 'string') {
      const format = String(body.format ?? 'png');
      await renderSideBySide(target, `data:image/${format};base64,${body.imageBase64}`, format, format, input, options);
      return;
    }
  }
  target.append(rawJson(body));
}
