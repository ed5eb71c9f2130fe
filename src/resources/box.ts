import { z } from 'zod';

/** A detection box in the Python services' answers: `[x1, y1, x2, y2]`, integer pixels of the original image. */
export const boxSchema = z.tuple([z.number().int(), z.number().int(), z.number().int(), z.number().int()]).describe('[x1, y1, x2, y2] in original-image pixels');
