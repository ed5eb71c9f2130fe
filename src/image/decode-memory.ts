/**
 * What decoding an image costs in memory, from its header, and the process-wide budget decodes
 * share. libvips holds a few copies of a whole stored row at once (loader, format conversion,
 * resampling regions), so a very wide image costs far more than its pixels: a 40000000×1 RGB PNG
 * briefly holds about 1 GB to resize, the same image RGBA about 3 GB, 16-bit RGBA about 5 GB.
 * Measured peak bytes per pixel of row width, per byte of sample (tests/image/decode-memory.test.ts
 * measures every PNG layout): without alpha at most 36 (16-bit RGB to 8-bit RGB), with alpha at
 * most 76 (8-bit RGBA resized). The constants below keep a margin over both.
 */

export interface StoredLayout {
  /** Width of the rows as stored (before EXIF orientation): what the decoder reads at once. */
  rowWidth: number;
  /** Pixels of one frame. */
  pixels: number;
  /** Bands as stored (gray 1, gray+alpha 2, RGB 3, RGBA 4; palette images as expanded). */
  channels: number;
  /** Bytes per sample as stored (8-bit 1, 16-bit 2, float 4). */
  bytesPerSample: number;
}

const ROW_BYTES_PER_PIXEL = { opaque: 40, alpha: 80 } as const;
/** The decoded RGB frame and libvips' strips beside it. */
const FRAME_BYTES_PER_PIXEL = 4;

/** The most memory a decode of the image (whole, or resized on the way) holds at once, in bytes. */
export function decodeMemoryEstimate(layout: StoredLayout): number {
  const alpha = layout.channels === 2 || layout.channels === 4;
  const perRowPixel = (alpha ? ROW_BYTES_PER_PIXEL.alpha : ROW_BYTES_PER_PIXEL.opaque) * layout.bytesPerSample;
  return layout.rowWidth * perRowPixel + layout.pixels * FRAME_BYTES_PER_PIXEL;
}

/** Bytes per sample of sharp's `metadata().depth`. */
export function bytesPerSample(depth: string | undefined): number {
  switch (depth) {
    case 'ushort':
    case 'short':
      return 2;
    case 'uint':
    case 'int':
    case 'float':
      return 4;
    case 'double':
    case 'complex':
      return 8;
    case 'dpcomplex':
      return 16;
    default:
      return 1;
  }
}

interface Waiter {
  bytes: number;
  start(): void;
}

export interface DecodeBudgetStats {
  capacityBytes: number;
  heldBytes: number;
  running: number;
  waiting: number;
}

/**
 * CVSERVE_DECODE_MEMORY_BYTES shared by every decode in the process: a decode runs once its
 * estimate fits beside those running, in arrival order (a large one is not overtaken for ever by
 * small ones). An image whose estimate alone is over the budget is refused from its header
 * (openImage), so every decode that waits gets its turn.
 */
export class DecodeBudget {
  private held = 0;
  private running = 0;
  private readonly queue: Waiter[] = [];

  constructor(readonly capacityBytes: number) {}

  /**
   * Runs `work` (one decode; it must not itself wait on the budget) holding `bytes`. An abort while
   * waiting rejects with the signal's reason and holds nothing.
   */
  async hold<T>(bytes: number, signal: AbortSignal | undefined, work: () => Promise<T>): Promise<T> {
    const amount = Math.min(bytes, this.capacityBytes);
    await this.admit(amount, signal);
    try {
      return await work();
    } finally {
      this.held -= amount;
      this.running--;
      this.startWaiting();
    }
  }

  stats(): DecodeBudgetStats {
    return { capacityBytes: this.capacityBytes, heldBytes: this.held, running: this.running, waiting: this.queue.length };
  }

  private fits(bytes: number): boolean {
    return this.held + bytes <= this.capacityBytes;
  }

  private take(bytes: number): void {
    this.held += bytes;
    this.running++;
  }

  private admit(bytes: number, signal: AbortSignal | undefined): Promise<void> {
    signal?.throwIfAborted();
    if (this.queue.length === 0 && this.fits(bytes)) {
      this.take(bytes);
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const onAbort = () => {
        const at = this.queue.indexOf(waiter);
        if (at >= 0) this.queue.splice(at, 1);
        reject(signal!.reason);
        // The head may have been the one blocking those behind it.
        this.startWaiting();
      };
      const waiter: Waiter = {
        bytes,
        start: () => {
          signal?.removeEventListener('abort', onAbort);
          this.take(bytes);
          resolve();
        },
      };
      this.queue.push(waiter);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  private startWaiting(): void {
    while (this.queue.length > 0 && this.fits(this.queue[0]!.bytes)) this.queue.shift()!.start();
  }
}
