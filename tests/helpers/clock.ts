import type { BatchTimer } from '../../src/engines/onnx/batcher.js';

/**
 * A batch timer that never fires by itself: a batch waiting for company waits until the test calls
 * `fire()`. What the batcher does before, at and after the end of a wait is then a sequence the
 * test writes, not a race against the clock.
 */
export class ManualBatchTimer implements BatchTimer {
  /** The delay of every wait started, in order. */
  readonly delays: number[] = [];
  private readonly waits = new Map<number, () => void>();
  private nextId = 1;
  private readonly setWaiters: (() => void)[] = [];

  set(callback: () => void, ms: number): unknown {
    const id = this.nextId++;
    this.waits.set(id, callback);
    this.delays.push(ms);
    for (const resolve of this.setWaiters.splice(0)) resolve();
    return id;
  }

  clear(handle: unknown): void {
    this.waits.delete(handle as number);
  }

  /** Waits not yet ended. */
  get outstanding(): number {
    return this.waits.size;
  }

  /** Resolves once a wait is outstanding (at once if one is). */
  whenWaiting(): Promise<void> {
    if (this.waits.size > 0) return Promise.resolve();
    return new Promise((resolve) => this.setWaiters.push(resolve));
  }

  /** Ends every outstanding wait, as if its time had passed; returns how many. */
  fire(): number {
    const due = [...this.waits.values()];
    this.waits.clear();
    for (const callback of due) callback();
    return due.length;
  }
}
