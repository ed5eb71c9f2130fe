import { z } from 'zod';
import type { CostItem, ImageHeader, InitContext, Resource, ResourceResult, ResourceStatus, RunContext } from './contract.js';
import { describeParams, outputSchema } from './describe.js';
import type { ImageInput } from '../image/types.js';

/** What a resource's author writes: the contract, with the lifecycle optional. */
export type ResourceDeclaration<P extends z.ZodObject> = Omit<Resource<P>, 'init' | 'status' | 'close'> & Partial<Pick<Resource<P>, 'init' | 'status' | 'close'>>;

/** Route names the service uses itself. */
export const RESERVED_NAMES = new Set(['ping', 'docs', 'playground', 'healthz', 'readyz', 'metrics', 'openapi', 'v1']);
const NAME = /^[a-z0-9][a-z0-9-]{0,62}$/;

/** A declaration that breaks the contract: the message says which part. */
export class ContractError extends Error {}

function check(condition: unknown, message: string): asserts condition {
  if (!condition) throw new ContractError(message);
}

/**
 * Checks a declaration against the contract, built-in or plugin alike (a plugin written in plain
 * JavaScript gets the checks TypeScript gives the built-ins): a route name, a zod object of
 * parameters and an output that can be described as JSON Schema (the OpenAPI document, the
 * playground and the CLI are built from them), functions where functions belong.
 */
export function checkDeclaration(candidate: unknown, taken: ReadonlySet<string> = new Set()): asserts candidate is ResourceDeclaration<z.ZodObject> {
  check(typeof candidate === 'object' && candidate !== null, 'a resource must be an object');
  const r = candidate as Record<string, unknown>;
  check(typeof r.name === 'string' && NAME.test(r.name), `name ${JSON.stringify(r.name)} must be lowercase letters, digits and dashes`);
  check(!RESERVED_NAMES.has(r.name), `name "${r.name}" is reserved by the service`);
  check(!taken.has(r.name), `the route /${r.name} already exists`);
  check(typeof r.summary === 'string' && r.summary.trim() !== '', 'summary must be a non-empty string');
  check(r.description === undefined || typeof r.description === 'string', 'description must be a string');
  check(r.params instanceof z.ZodObject, "params must be a zod object made with cvserve's z (z.strictObject({...}))");
  const output = r.output as { kind?: unknown; schema?: unknown } | undefined;
  check(output?.kind === 'image' || (output?.kind === 'json' && output.schema instanceof z.ZodType), 'output must be { kind: "image" } or { kind: "json", schema: <zod schema> }');
  const methods = r.methods;
  check(methods === undefined || (Array.isArray(methods) && methods.length > 0 && methods.every((m) => m === 'GET' || m === 'POST')), 'methods must be a non-empty list of "GET" and "POST"');
  check(typeof r.run === 'function', 'run(input, params, ctx) must be a function');
  for (const hook of ['init', 'status', 'close', 'cost'] as const) check(r[hook] === undefined || typeof r[hook] === 'function', `${hook} must be a function`);
  try {
    describeParams(r.params);
    if (output.kind === 'json') outputSchema(output.schema as z.ZodType);
  } catch (err) {
    throw new ContractError(`its schemas cannot be described as JSON Schema: ${(err as Error).message}`);
  }
}

/**
 * A resource from its declaration: checked against the contract, the optional lifecycle filled
 * in, and an init that throws remembered, so the route answers 503 with the reason instead of
 * running half set up. The declaration's own `this` is kept for every call (classes work as well
 * as plain objects), and its parameter types flow into run and cost: no casts anywhere.
 */
export function defineResource<P extends z.ZodObject>(declaration: ResourceDeclaration<P>, taken?: ReadonlySet<string>): Resource<P> {
  checkDeclaration(declaration, taken);
  const d = declaration;
  let initError: string | undefined;
  return {
    name: d.name,
    summary: d.summary,
    description: d.description,
    params: d.params,
    output: d.output,
    methods: d.methods,
    async init(ctx: InitContext) {
      try {
        await d.init?.(ctx);
      } catch (err) {
        initError = (err as Error)?.message ?? String(err);
        throw err;
      }
    },
    status(): ResourceStatus {
      if (initError !== undefined) return { ready: false, reason: `failed to initialise: ${initError}` };
      return d.status ? d.status() : { ready: true };
    },
    cost: d.cost ? (image: ImageHeader, params: z.output<P>): CostItem[] => d.cost!(image, params) : undefined,
    run: (input: ImageInput, params: z.output<P>, ctx: RunContext): Promise<ResourceResult> => d.run(input, params, ctx),
    async close() {
      await d.close?.();
    },
  };
}

/** Every resource of a service, each defined once; two with one name is a contract error. */
export function defineAll(declarations: readonly ResourceDeclaration<z.ZodObject>[]): Resource[] {
  const taken = new Set<string>();
  return declarations.map((d) => {
    const resource = defineResource(d, taken);
    taken.add(resource.name);
    return resource;
  });
}
