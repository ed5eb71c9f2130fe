import type { z } from 'zod';
import { AppError } from '../errors.js';

/** Validates raw parameters against a resource's schema; a failure names the parameter (400). */
export function parseParams<S extends z.ZodType>(schema: S, fields: Record<string, unknown>): z.output<S> {
  const result = schema.safeParse(fields);
  if (result.success) return result.data;
  const messages = result.error.issues.map((issue) => {
    if (issue.code === 'unrecognized_keys') {
      return `unknown parameter${issue.keys.length > 1 ? 's' : ''} ${issue.keys.join(', ')}`;
    }
    const name = issue.path.join('.') || 'parameters';
    return `${name} ${issue.message}`;
  });
  return (() => {
    throw new AppError('BAD_PARAMETER', { publicMessage: `Invalid parameter: ${messages.join('; ')}` });
  })();
}
