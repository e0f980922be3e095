/**
 * A runner's slots: how many tasks it may hold at once, counted as
 *
 *   held = poll permits + reservations + running tasks   (never above capacity for new permits)
 *
 * The pool-queue worker asks this pool for a permit before it polls, so a runner with no free
 * slot does not even ask for a reservation: "only a runner with a free slot answers".
 * A reservation holds a slot until its task starts, or until the eviction time passes and the
 * slot is given back. A permit and the reservation made under it overlap briefly (the count is
 * conservative for a moment, never optimistic).
 */
import { randomUUID } from 'node:crypto';
import type { CustomSlotSupplier, ActivitySlotInfo } from '@temporalio/worker';

export interface SlotSnapshot {
  capacity: number;
  free: number;
  reservations: number;
  running: number;
  accepting: boolean;
}

export class SlotPool {
  private permits = 0;
  private readonly reservations = new Map<string, NodeJS.Timeout>();
  private readonly runningKeys = new Set<string>();
  private waiters: (() => void)[] = [];
  private accepting = true;

  constructor(
    readonly capacity: number,
    private readonly evictionMs: number,
  ) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new Error(`slot capacity must be a positive integer, got ${capacity}`);
  }

  private get held(): number {
    return this.permits + this.reservations.size + this.runningKeys.size;
  }

  /** Stop or resume handing out permits (disable / enable; shutdown). */
  setAccepting(accepting: boolean): void {
    this.accepting = accepting;
    this.wake();
  }

  /** Waits for a free slot and takes a poll permit. Rejects with the signal's reason when aborted. */
  async acquirePermit(signal: AbortSignal): Promise<void> {
    while (!this.tryAcquirePermit()) {
      await new Promise<void>((resolve, reject) => {
        const onAbort = () => {
          this.waiters = this.waiters.filter((w) => w !== wake);
          // The SDK expects exactly the signal's reason back (an AbortError).
          reject(signal.reason);
        };
        const wake = () => {
          signal.removeEventListener('abort', onAbort);
          resolve();
        };
        if (signal.aborted) return onAbort();
        signal.addEventListener('abort', onAbort, { once: true });
        this.waiters.push(wake);
      });
    }
  }

  tryAcquirePermit(): boolean {
    if (!this.accepting || this.held >= this.capacity) return false;
    this.permits++;
    return true;
  }

  releasePermit(): void {
    this.permits = Math.max(0, this.permits - 1);
    this.wake();
  }

  /** Holds a slot for a task about to be sent to this runner's own queue. */
  reserve(): string {
    const id = randomUUID();
    const timer = setTimeout(() => this.release(id), this.evictionMs);
    timer.unref();
    this.reservations.set(id, timer);
    return id;
  }

  /** Gives a reservation back (evicted, or the task never came). */
  release(reservationId: string): void {
    const timer = this.reservations.get(reservationId);
    if (timer === undefined) return;
    clearTimeout(timer);
    this.reservations.delete(reservationId);
    this.wake();
  }

  /**
   * The reserved task starts: its slot moves from the reservation to the running set.
   * A reservation already evicted still runs: the workflow only sends work it reserved,
   * and refusing it now would lose a task that no other runner will take.
   */
  startRunning(reservationId: string, key: string): void {
    const timer = this.reservations.get(reservationId);
    if (timer !== undefined) {
      clearTimeout(timer);
      this.reservations.delete(reservationId);
    }
    this.runningKeys.add(key);
  }

  finishRunning(key: string): void {
    this.runningKeys.delete(key);
    this.wake();
  }

  isRunning(key: string): boolean {
    return this.runningKeys.has(key);
  }

  runningTasks(): string[] {
    return [...this.runningKeys];
  }

  snapshot(): SlotSnapshot {
    return {
      capacity: this.capacity,
      free: Math.max(0, this.capacity - this.reservations.size - this.runningKeys.size),
      reservations: this.reservations.size,
      running: this.runningKeys.size,
      accepting: this.accepting,
    };
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }
}

/** The pool-queue worker's activity slot supplier: permits come from the runner's slots. */
export function poolSlotSupplier(slots: SlotPool): CustomSlotSupplier<ActivitySlotInfo> {
  return {
    type: 'custom',
    reserveSlot: async (_ctx, abortSignal) => {
      await slots.acquirePermit(abortSignal);
      return {};
    },
    tryReserveSlot: () => (slots.tryAcquirePermit() ? {} : null),
    markSlotUsed: () => undefined,
    releaseSlot: () => slots.releasePermit(),
  };
}
