import { SETTINGS, type Config } from '../config.js';
import { AppError } from '../errors.js';
import { assertEncodable } from '../image/encode.js';
import type { OutputFormat } from '../image/types.js';
import type { CostItem, CostLimitName } from './contract.js';

/** The limits cost items are held to, as configured. */
export type CostLimits = Pick<Config, CostLimitName>;

export function costLimits(config: Config): CostLimits {
  return {
    maxOutputPixels: config.maxOutputPixels,
    maxWorkPixels: config.maxWorkPixels,
    detectMaxPyramidPixels: config.detectMaxPyramidPixels,
    upscaleMaxTiles: config.upscaleMaxTiles,
    ocrMaxSide: config.ocrMaxSide,
    ocrMaxBoxes: config.ocrMaxBoxes,
  };
}

const UNIT: Record<CostLimitName, string> = {
  maxOutputPixels: 'pixels',
  maxWorkPixels: 'pixels',
  detectMaxPyramidPixels: 'pixels',
  upscaleMaxTiles: 'tiles',
  ocrMaxSide: 'pixels',
  ocrMaxBoxes: 'boxes',
};

const HINT: Partial<Record<CostLimitName, string>> = {
  detectMaxPyramidPixels: ': give maxSide (e.g. maxSide=2000) or a larger scaleFactor',
  ocrMaxSide: ': give a smaller maxSide',
  ocrMaxBoxes: ': give a smaller maxBoxes',
};

const n = (v: number) => Math.round(v).toLocaleString('en-US');

function overBy(amount: number, limit: number): string {
  const ratio = amount / limit;
  return ratio >= 10 ? `${Math.round(ratio)}x` : `${ratio.toFixed(2)}x`;
}

/**
 * Refuses a request whose cost items exceed their limits: 413 naming the item, the setting and by
 * how much. `format` is the format an image answer will be encoded in, when it is known up front:
 * an output larger than that format can hold is refused here too, before the work.
 */
export function checkCost(route: string, items: readonly CostItem[], limits: CostLimits, format?: OutputFormat): void {
  for (const item of items) {
    const limit = limits[item.limit];
    if (item.amount > limit) {
      throw new AppError(item.limit === 'maxOutputPixels' ? 'OUTPUT_TOO_LARGE' : 'WORK_TOO_LARGE', {
        publicMessage:
          `/${route}: ${item.what} needs ${n(item.amount)} ${UNIT[item.limit]}, ${overBy(item.amount, limit)} the limit of ` +
          `${n(limit)} (${SETTINGS[item.limit].env})${HINT[item.limit] ?? ''}`,
      });
    }
    if (item.size && format) assertEncodable(item.size.width, item.size.height, format);
  }
}
