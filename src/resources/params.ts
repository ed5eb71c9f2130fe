import { z } from 'zod';

/**
 * Parameter builders shared by every resource. Values arrive as strings (query string, form
 * fields) or typed (JSON), so numbers and booleans accept both. Bounds and defaults live here, in
 * the one declaration that also feeds OpenAPI, the playground and the CLI.
 */
interface Described {
  description: string;
}

type Bounds = Described & { min: number; max: number };

/** A plain decimal number as text: no hex, binary or octal forms, no empty string, no Infinity. */
const DECIMAL = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;

/**
 * Numbers from text, strictly: `''` is not 0, `0x10` is not 16, and `1e-400` (which JavaScript
 * reads as 0) is refused rather than silently becoming another value. Typed JSON numbers pass as is.
 */
const strictNumber = z.union([z.number(), z.string()], { error: 'must be a number' }).transform((v, ctx) => {
  if (typeof v === 'number') return v;
  const text = v.trim();
  const n = Number(text);
  const underflow = n === 0 && /[1-9]/.test(text.replace(/[eE].*$/, ''));
  if (!DECIMAL.test(text) || !Number.isFinite(n) || underflow) {
    ctx.addIssue({ code: 'custom', message: text === '' ? 'must be a number, not empty' : `must be a decimal number (got ${JSON.stringify(v.slice(0, 40))})` });
    return z.NEVER;
  }
  return n;
});

function boundedNumber(kind: 'int' | 'number', o: Bounds) {
  let n = z.number({ error: 'must be a number' });
  if (kind === 'int') n = n.int({ error: 'must be an integer' });
  return strictNumber.pipe(n.min(o.min, { error: `must be ≥ ${o.min}` }).max(o.max, { error: `must be ≤ ${o.max}` }));
}

const BOOL_WORDS: Record<string, boolean> = { true: true, '1': true, yes: true, on: true, false: false, '0': false, no: false, off: false };

export const param = {
  int: (o: Bounds & { default: number }) => boundedNumber('int', o).default(o.default).describe(o.description),
  number: (o: Bounds & { default: number }) => boundedNumber('number', o).default(o.default).describe(o.description),
  /** An integer that is off unless given. */
  optionalInt: (o: Bounds) => boundedNumber('int', o).optional().describe(o.description),
  optionalNumber: (o: Bounds) => boundedNumber('number', o).optional().describe(o.description),
  boolean: (o: Described & { default: boolean }) =>
    z
      .union([
        z.boolean(),
        z.string().transform((v, ctx) => {
          const b = BOOL_WORDS[v.toLowerCase()];
          if (b === undefined) {
            ctx.addIssue({ code: 'custom', message: 'must be true or false' });
            return z.NEVER;
          }
          return b;
        }),
      ], { error: 'must be true or false' })
      .default(o.default)
      .describe(o.description),
  enum: <const T extends readonly [string, ...string[]]>(values: T, o: Described & { default?: T[number] }) => {
    const e = z.enum(values, { error: `must be one of ${values.join(', ')}` });
    return o.default === undefined ? e.optional().describe(o.description) : e.default(o.default as never).describe(o.description);
  },
  /** Comma-separated list (or a JSON array) of strings. */
  list: (o: Described & { default: string[] }) =>
    z
      .union([z.array(z.string()), z.string().transform((v) => v.split(',').map((s) => s.trim()).filter(Boolean))])
      .default(o.default)
      .describe(o.description),
};

/** `format` for routes answering images. */
export const formatParam = (defaultFormat?: 'jpeg' | 'png' | 'webp') =>
  param.enum(['jpeg', 'png', 'webp'] as const, {
    default: defaultFormat,
    description: defaultFormat ? 'Output image format.' : 'Output image format (default: the input’s format where possible).',
  });

/** `draw` for detection routes: answer the input image with the boxes drawn on it. */
export const drawParam = () => param.boolean({ default: false, description: 'Answer the input image with the results drawn on it instead of JSON.' });
