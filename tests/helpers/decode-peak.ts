// Run by tests/image/decode-memory.test.ts in a fresh process: decodes one image file the way the
// routes do and prints the peak memory the decode added beside the estimate.
import { readFileSync } from 'node:fs';
import { openImage } from '../../src/image/decode.js';

const [file, how] = process.argv.slice(2) as [string, 'rgb' | 'resize'];
const input = await openImage(readFileSync(file), { maxPixels: 1_000_000_000, jpegDecoder: 'sharp' });
const before = process.memoryUsage().rss;
if (how === 'rgb') await input.rgb();
else await input.decoding(() => input.pipeline().removeAlpha().toColourspace('srgb').resize(640, 1, { fit: 'fill', kernel: 'linear' }).raw().toBuffer());
const peakBytes = process.resourceUsage().maxRSS * 1024 - before;
process.stdout.write(JSON.stringify({ peakBytes, estimateBytes: input.decodeBytes }));
