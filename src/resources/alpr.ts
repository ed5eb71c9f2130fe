import { z } from 'zod';
import type { DecodedLine } from '../engines/onnx/text/ctc.js';
import type { Quad } from '../engines/onnx/text/db.js';
import type { DrawBox, ImageInput } from '../image/types.js';
import type { CostItem, ImageHeader, InitContext, Resource, ResourceResult, ResourceStatus, RunContext } from './contract.js';
import { ObjectDetectionResource } from './object-detection.js';
import { box, polygon, quadBox, quadPolygon, textParams } from './ocr.js';
import { drawParam, formatParam, param } from './params.js';
import { unavailable } from './pipeline.js';
import { PLATE_FORMATS, PLATE_REGIONS, plateCandidates, plateLike, type PlateRegion } from './text/plate-formats.js';
import { LATIN_CHARSET, TextModels } from './text/text-models.js';

/** The manifest route naming an optional plate detector (any detector with a plate class). */
export const PLATE_DETECTOR_ROUTE = 'alpr-plates';
/** COCO classes a plate can belong to. */
const VEHICLES = new Set(['car', 'truck', 'bus', 'motorcycle']);
const VEHICLE_THRESHOLD = 0.3;
const PLATE_DETECTOR_THRESHOLD = 0.3;

const params = z.strictObject({
  region: param.enum(PLATE_REGIONS, {
    description: `Plate format rules (default: CVSERVE_ALPR_REGION, any): ${PLATE_REGIONS.map((r) => `${r} (${PLATE_FORMATS[r].description})`).join('; ')}.`,
  }),
  minConfidence: param.number({ min: 0, max: 1, default: 0.6, description: 'Lowest plate confidence reported (geometric mean of the best reading\'s character probabilities).' }),
  vehicles: param.boolean({ default: true, description: 'Also find the vehicles (COCO detector of /catdetection) and report the one each plate belongs to.' }),
  ...textParams,
  draw: drawParam(),
  format: formatParam(),
});

const candidate = z.object({
  plate: z.string(),
  confidence: z.number().min(0).max(1).describe('Product of the characters\' probabilities'),
  matchesTemplate: z.boolean().describe('Follows one of the region\'s layouts'),
});

export const alprSchema = z.object({
  status: z.literal('ok'),
  result: z.array(
    z.object({
      plate: z.string().describe('The best reading: letters and digits, upper case'),
      confidence: z.number().min(0).max(1),
      matchesTemplate: z.boolean(),
      region: z.string(),
      box,
      polygon,
      candidates: z.array(candidate).describe('Readings best first (the first is `plate`), as OpenALPR lists them'),
      vehicle: z.object({ label: z.string(), score: z.number(), box }).optional().describe('The detected vehicle the plate is on'),
    }),
  ),
});

type Vehicle = { label: string; score: number; box: [number, number, number, number] };
type Plate = z.output<typeof alprSchema>['result'][number];

const round3 = (v: number) => Math.round(v * 1000) / 1000;

function vehicleOf(b: [number, number, number, number], vehicles: Vehicle[]): Vehicle | undefined {
  const cx = (b[0] + b[2]) / 2, cy = (b[1] + b[3]) / 2;
  const inside = vehicles.filter((v) => cx >= v.box[0] && cx <= v.box[2] && cy >= v.box[1] && cy <= v.box[3]);
  // The smallest vehicle holding the plate's centre: a car in front of a bus is the car.
  return inside.sort((a, b) => (a.box[2] - a.box[0]) * (a.box[3] - a.box[1]) - (b.box[2] - b.box[0]) * (b.box[3] - b.box[1]))[0];
}

/** One recognized line as a plate of the region, or undefined when it cannot be one. */
export function readPlate(line: DecodedLine, quad: Quad, region: PlateRegion, vehicles: Vehicle[]): Plate | undefined {
  if (!plateLike(line.text, region)) return undefined;
  const candidates = plateCandidates(line.chars, region);
  const best = candidates[0];
  if (!best) return undefined;
  const b = quadBox(quad);
  const vehicle = vehicleOf(b, vehicles);
  return {
    plate: best.plate,
    confidence: round3(best.confidence ** (1 / best.plate.length)),
    matchesTemplate: best.matchesTemplate,
    region,
    box: b,
    polygon: quadPolygon(quad),
    candidates: candidates.map((c) => ({ ...c, confidence: round3(c.confidence) })).filter((c, i) => i === 0 || c.confidence > 0),
    ...(vehicle ? { vehicle } : {}),
  };
}

/**
 * /alpr: licence plates. Text detection over the whole photo (or, when the manifest names one in
 * routes["alpr-plates"], a plate detector first), every box read with the recognizer restricted
 * to letters, digits and separators, then the lines that can be plates fitted to the region's
 * layouts with the recognizer's own alternatives per character.
 */
export class AlprResource implements Resource<typeof params> {
  readonly name = 'alpr';
  readonly summary = 'Licence plate recognition (ALPR)';
  readonly description =
    'Reads licence plates: {"status": "ok", "result": [{"plate": "7ABC123", "confidence": 0.93, "box", "polygon", "candidates": [{"plate", "confidence", "matchesTemplate"}], "vehicle": {"label": "car", ...}}]}, ' +
    'plates on a vehicle first, then those following a layout of the region, then by confidence. region picks the layout rules (us, eu, any); candidates are the alternative readings ranked by the product of character probabilities, as OpenALPR answers. ' +
    'draw=true answers the image with the plates drawn.';
  readonly params = params;
  readonly output = { kind: 'json', schema: alprSchema, drawable: true } as const;
  private readonly vehicles = new ObjectDetectionResource({ name: 'catdetection' });
  private plates?: ObjectDetectionResource;
  private defaultRegion: PlateRegion = 'any';

  constructor(private readonly text = new TextModels('alpr')) {}

  async init(ctx: InitContext): Promise<void> {
    this.defaultRegion = ctx.config.alprRegion;
    const plateModel = ctx.engines.models.manifest.routes[PLATE_DETECTOR_ROUTE];
    if (plateModel) this.plates = new ObjectDetectionResource({ modelId: plateModel, name: 'alpr' });
    await Promise.all([this.text.init(ctx), this.vehicles.init(ctx), this.plates?.init(ctx)]);
  }

  /** Ready with the text models; a configured plate detector must be ready too. The vehicle detector is optional. */
  status(): ResourceStatus {
    const text = this.text.status();
    if (!text.ready) return text;
    return this.plates ? this.plates.status() : text;
  }

  async settled(): Promise<void> {
    await Promise.all([this.text.settled(), this.vehicles.settled(), this.plates?.settled()]);
  }

  cost(image: ImageHeader, p: z.output<typeof params>): CostItem[] {
    return [...this.text.cost(image, p.maxSide, p.maxBoxes), ...(p.vehicles && this.vehicles.status().ready ? this.vehicles.cost(image) : [])];
  }

  private async findVehicles(input: ImageInput, ctx: RunContext): Promise<Vehicle[]> {
    if (!this.vehicles.status().ready) return [];
    const found = await this.vehicles.run(input, { labels: ['all'], threshold: VEHICLE_THRESHOLD, draw: false, format: undefined }, ctx);
    const result = (found.kind === 'json' ? found.body.result : []) as Vehicle[];
    return result.filter((v) => VEHICLES.has(v.label));
  }

  /** Plate boxes from the plate detector, grown a little so edge characters are not cut. */
  private async plateQuads(detector: ObjectDetectionResource, input: ImageInput, p: z.output<typeof params>, ctx: RunContext): Promise<Quad[]> {
    const found = await detector.run(input, { labels: ['all'], threshold: PLATE_DETECTOR_THRESHOLD, draw: false, format: undefined }, ctx);
    const all = (found.kind === 'json' ? found.body.result : []) as Vehicle[];
    const plates = all.filter((d) => /plate/i.test(d.label)).slice(0, this.text.maxBoxes(p.maxBoxes));
    return plates.map(({ box: [x1, y1, x2, y2] }) => {
      const dx = (x2 - x1) * 0.05, dy = (y2 - y1) * 0.1;
      const [a, b, c, d] = [Math.max(0, x1 - dx), Math.max(0, y1 - dy), Math.min(input.width, x2 + dx), Math.min(input.height, y2 + dy)];
      return [[a, b], [c, b], [c, d], [a, d]] as Quad;
    });
  }

  async run(input: ImageInput, p: z.output<typeof params>, ctx: RunContext): Promise<ResourceResult> {
    const vehicles = p.vehicles ? this.findVehicles(input, ctx) : Promise.resolve([]);
    vehicles.catch(() => {});
    let quads: Quad[];
    if (this.plates) {
      if (!this.plates.status().ready) throw unavailable(this.name, 'the plate detector is not ready');
      quads = await this.plateQuads(this.plates, input, p, ctx);
    } else {
      quads = (await this.text.detect(this.name, input, { maxSide: p.maxSide, maxBoxes: p.maxBoxes }, ctx.signal)).boxes.map((b) => b.quad);
    }
    const read = await this.text.recognize(this.name, input, quads, { charset: LATIN_CHARSET, alternatives: 3 }, ctx.signal);
    const onto = await vehicles;
    const plates = read.lines
      .map((line, i) => readPlate(line, quads[i]!, p.region ?? this.defaultRegion, onto))
      .filter((r): r is Plate => r !== undefined && r.confidence >= p.minConfidence)
      .sort((a, b) => Number(!!b.vehicle) - Number(!!a.vehicle) || Number(b.matchesTemplate) - Number(a.matchesTemplate) || b.confidence - a.confidence);
    const boxes: DrawBox[] = plates.map((r) => ({ box: r.box, label: `${r.plate} ${r.confidence.toFixed(2)}` }));
    return { kind: 'json', body: { status: 'ok', result: plates }, boxes };
  }

  async close(): Promise<void> {
    this.text.close();
    await Promise.all([this.vehicles.close(), this.plates?.close()]);
  }
}

export function createAlprResource(text?: TextModels): AlprResource {
  return new AlprResource(text);
}
