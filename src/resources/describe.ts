import { z } from 'zod';

/** JSON Schema (2020-12) as plain data. */
export type JsonSchema = Record<string, unknown>;

/** One parameter as a person or a program sees it: what the OpenAPI document, the playground and the CLI show. */
export interface ParamDescription {
  name: string;
  /** JSON Schema of one value: type, default, minimum/maximum, enum, description. */
  schema: JsonSchema;
  required: boolean;
  description: string;
}

interface ZodInternals {
  _zod: { def: { type: string; defaultValue?: unknown; innerType?: z.ZodType } };
}

/** The default a parameter takes when it is not given, if it has one (zod keeps it on the `default` wrapper). */
function defaultOf(field: z.ZodType): { value: unknown } | undefined {
  let s = field as unknown as ZodInternals;
  for (let depth = 0; depth < 8 && s; depth++) {
    const def = s._zod.def;
    if (def.type === 'default' || def.type === 'prefault') return { value: def.defaultValue };
    if (!def.innerType) return undefined;
    s = def.innerType as unknown as ZodInternals;
  }
  return undefined;
}

const isStringish = (s: unknown) => typeof s === 'object' && s !== null && (s as JsonSchema).type === 'string' && Object.keys(s).length === 1;

/**
 * The value a client sends, as JSON Schema, with zod's input-side artefacts tidied up: the
 * "boolean or the words true/false" union becomes boolean, "array or comma-separated string"
 * becomes an array of strings (sent comma-separated in a query), and the default is restored
 * where zod drops it (defaults in front of a transform).
 */
export function paramSchema(field: z.ZodType): JsonSchema {
  const schema = z.toJSONSchema(field, { io: 'input', unrepresentable: 'any' }) as JsonSchema;
  delete schema.$schema;
  const type = schema.type;
  // A strict number parameter reads a number or its decimal text: describe the number it becomes (type, bounds, default).
  if (Array.isArray(type) && type.length === 2 && type.includes('number') && type.includes('string')) {
    const out = z.toJSONSchema(field, { io: 'output', unrepresentable: 'any' }) as JsonSchema;
    delete out.$schema;
    delete schema.type;
    Object.assign(schema, out);
  }
  if (Array.isArray(type) && type.includes('boolean') && type.every((t) => t === 'boolean' || t === 'string')) {
    schema.type = 'boolean';
  }
  const anyOf = schema.anyOf as JsonSchema[] | undefined;
  if (anyOf && anyOf.length === 2) {
    const array = anyOf.find((s) => s.type === 'array');
    const other = anyOf.find((s) => s !== array);
    if (array && isStringish(other)) {
      delete schema.anyOf;
      Object.assign(schema, { type: 'array', items: array.items ?? { type: 'string' } });
    } else if (other && isStringish(anyOf.find((s) => s !== other)) && other.type === 'boolean') {
      delete schema.anyOf;
      schema.type = 'boolean';
    }
  }
  const given = defaultOf(field);
  if (!('default' in schema) && given && given.value !== undefined) schema.default = given.value;
  return schema;
}

/** Every parameter of a resource's schema, in declaration order. */
export function describeParams(params: z.ZodObject): ParamDescription[] {
  return Object.entries(params.shape as Record<string, z.ZodType>).map(([name, field]) => {
    const schema = paramSchema(field);
    return {
      name,
      schema,
      required: !field.safeParse(undefined).success,
      description: typeof schema.description === 'string' ? schema.description : (field.description ?? ''),
    };
  });
}

/** JSON Schema of a resource's JSON answer. */
export function outputSchema(schema: z.ZodType): JsonSchema {
  const out = z.toJSONSchema(schema, { io: 'output', unrepresentable: 'any' }) as JsonSchema;
  delete out.$schema;
  return out;
}
