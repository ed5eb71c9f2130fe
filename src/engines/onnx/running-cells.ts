/**
 * Which workers of one model are running it: one Int32 cell per worker slot in memory shared by
 * the model's workers, 1 while that slot's session runs. A worker reads the others' cells as its
 * run starts, to choose between its sessions (all threads when alone, fewer when not).
 */
export class RunningCells {
  private readonly cells: Int32Array;

  constructor(buffer: SharedArrayBuffer, private readonly slot: number) {
    this.cells = new Int32Array(buffer);
    if (!Number.isInteger(slot) || slot < 0 || slot >= this.cells.length) throw new Error(`slot ${slot} is not one of ${this.cells.length}`);
    // A worker that replaces one which died mid-run starts with its slot cleared.
    Atomics.store(this.cells, slot, 0);
  }

  static buffer(workers: number): SharedArrayBuffer {
    return new SharedArrayBuffer(workers * Int32Array.BYTES_PER_ELEMENT);
  }

  /** Marks this slot running; true when another slot was running too. */
  enter(): boolean {
    Atomics.store(this.cells, this.slot, 1);
    for (let i = 0; i < this.cells.length; i++) if (i !== this.slot && Atomics.load(this.cells, i) !== 0) return true;
    return false;
  }

  exit(): void {
    Atomics.store(this.cells, this.slot, 0);
  }
}
