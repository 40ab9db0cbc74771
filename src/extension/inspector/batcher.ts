/**
 * Collects items and delivers them in batches: the first item after a flush starts a timer, and everything that
 * arrives before it fires is delivered together (or at once when the batch is full). The Inspector uses it so that
 * thousands of streamed per-tensor results become a few `postMessage` calls per second. Pure: no `vscode` import.
 */

/** Timer functions (injectable so tests can drive time by hand). */
export interface TimerApi {
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

const realTimers: TimerApi = {
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => {
    clearTimeout(handle as ReturnType<typeof setTimeout>);
  },
};

/** Batches items for `deliver`, at most one delivery per `intervalMs` unless `maxItems` is reached first. */
export class Batcher<T> {
  private pending: T[] = [];
  private timer: unknown = undefined;
  private disposed = false;

  /**
   * @param deliver receives each non-empty batch, in arrival order.
   * @param intervalMs longest an item waits before delivery, in milliseconds (> 0).
   * @param maxItems a batch reaching this size is delivered immediately (≥ 1).
   */
  constructor(
    private readonly deliver: (items: T[]) => void,
    private readonly intervalMs = 100,
    private readonly maxItems = 1000,
    private readonly timers: TimerApi = realTimers,
  ) {}

  /** Number of items waiting for delivery. */
  get size(): number {
    return this.pending.length;
  }

  /** Queues `item`; ignored after `dispose`. */
  push(item: T): void {
    if (this.disposed) return;
    this.pending.push(item);
    if (this.pending.length >= this.maxItems) {
      this.flush();
      return;
    }
    if (this.timer === undefined) {
      this.timer = this.timers.setTimeout(() => {
        this.timer = undefined;
        this.flush();
      }, this.intervalMs);
    }
  }

  /** Delivers everything pending now (no-op when empty) and cancels the timer. */
  flush(): void {
    if (this.timer !== undefined) {
      this.timers.clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (this.pending.length === 0) return;
    const items = this.pending;
    this.pending = [];
    this.deliver(items);
  }

  /** Drops everything pending without delivering it. */
  clear(): void {
    if (this.timer !== undefined) {
      this.timers.clearTimeout(this.timer);
      this.timer = undefined;
    }
    this.pending = [];
  }

  /** Drops pending items and ignores later pushes. */
  dispose(): void {
    this.clear();
    this.disposed = true;
  }
}
