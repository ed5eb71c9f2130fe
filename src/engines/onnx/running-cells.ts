/**
 * Which workers of one model are running it, in memory shared by the model's workers: one Int32
 * cell per worker slot, 1 while that slot's session runs, and after them one cell counting the
 * model's last run starts that found no other worker running. A worker reads them as its run
 * starts, to choose between its sessions (all threads when alone, fewer when not).
 */

/**
 * Starts in a row that must find the model's other workers idle, after one that did not, before a
 * run takes every thread again. Under load a worker now and then starts while the other is between
 * frames; a run on every thread there costs about 40% more CPU than on one, and the other worker's
 * next frame arrives a millisecond later to share the cores with it. Two quiet starts in a row
 * mean the load has gone.
 */
export const QUIET_STARTS = 2;

export class RunningCells {
  private readonly cells: Int32Array;
  /** The cell counting quiet starts (up to QUIET_STARTS), after the slots'. */
  private readonly quiet: number;

  constructor(buffer: SharedArrayBuffer, private readonly slot: number) {
    this.cells = new Int32Array(buffer);
    this.quiet = this.cells.length - 1;
    if (!Number.isInteger(slot) || slot < 0 || slot >= this.quiet) throw new Error(`slot ${slot} is not one of ${this.quiet}`);
    // A worker that replaces one which died mid-run starts with its slot cleared.
    Atomics.store(this.cells, slot, 0);
  }

  /** Cells for `workers` slots; the model starts as if it had long been idle. */
  static buffer(workers: number): SharedArrayBuffer {
    const buffer = new SharedArrayBuffer((workers + 1) * Int32Array.BYTES_PER_ELEMENT);
    new Int32Array(buffer)[workers] = QUIET_STARTS;
    return buffer;
  }

  /** The slots' cells of a buffer (without the quiet-start count). */
  static slots(buffer: SharedArrayBuffer): Int32Array {
    return new Int32Array(buffer, 0, buffer.byteLength / Int32Array.BYTES_PER_ELEMENT - 1);
  }

  /**
   * Marks this slot running; true when the run should share the cores: another slot is running,
   * or one was at one of the model's last QUIET_STARTS starts.
   */
  enter(): boolean {
    Atomics.store(this.cells, this.slot, 1);
    let others = false;
    for (let i = 0; i < this.quiet; i++) if (i !== this.slot && Atomics.load(this.cells, i) !== 0) others = true;
    if (others) {
      Atomics.store(this.cells, this.quiet, 0);
      return true;
    }
    if (Atomics.load(this.cells, this.quiet) >= QUIET_STARTS) return false;
    Atomics.add(this.cells, this.quiet, 1);
    return true;
  }

  exit(): void {
    Atomics.store(this.cells, this.slot, 0);
  }
}
