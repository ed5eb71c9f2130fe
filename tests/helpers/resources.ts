import { z } from 'zod';
import type { AnyResource } from '../../src/resources/contract.js';

/**
 * A resource that answers at once with the decoded image's size: for tests of what happens around
 * a route (CORS, limits, parameters) that need no engine at all. `params` lists the parameters it
 * accepts (strings, optional).
 */
export function sizeResource(name = 'size', params: string[] = ['note']): AnyResource {
  return {
    name,
    summary: 'the image size',
    params: z.strictObject(Object.fromEntries(params.map((p) => [p, z.string().optional()]))),
    output: { kind: 'json', schema: z.object({ width: z.number(), height: z.number() }) },
    async init() {},
    status: () => ({ ready: true }),
    async run(input) {
      return { kind: 'json', body: { width: input.width, height: input.height } };
    },
    async close() {},
  };
}

/** A stand-in for the COCO detector (/catdetection, the dialect's detection): answers `result` with no model. */
export function standInDetector(result: unknown[] = []): AnyResource {
  return {
    name: 'catdetection',
    summary: 'stand-in detector',
    params: z.strictObject({ labels: z.unknown().optional(), threshold: z.unknown().optional() }),
    output: { kind: 'json', schema: z.object({}).passthrough() },
    async init() {},
    status: () => ({ ready: true }),
    async run() {
      return { kind: 'json', body: { status: 'ok', result } };
    },
    async close() {},
  };
}
