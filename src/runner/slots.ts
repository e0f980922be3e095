/**
 * A runner's slots, handed out as leases.
 *
 *   held = poll permits + leases   (a new permit only while held < capacity)
 *
 * The pool-queue worker asks for a permit before it polls, so a runner with no free slot does
 * not even ask for a reservation: "only a runner with a free slot answers". A reservation grants
 * one or more leases at once (as many as the run wants and the runner has free). A lease is
 *
 * - idle: granted, waiting for a task. Given back after `evictionMs` if no task comes, or after
 *   `lingerMs` once it has run a task (the run may send its next ready task on the same lease
 *   without reserving again: that is what makes dispatch cheap).
 * - busy: a task runs on it.
 *
 * A task that arrives on a lease already given back still runs if no other lease holds the slot;
 * otherwise it is refused before anything starts (`LeaseExpired`) and the run reserves again.
 *
 * A run may queue one task behind the task it sent a lease before (`waitForLease`): it starts the
 * moment that one ends, with no linger and no round trip through the run in between.
 */
import { randomUUID } from 'node:crypto';
import type { ActivitySlotInfo, CustomSlotSupplier } from '@temporalio/worker';
import { RunfleetError } from '../errors';

export interface SlotSnapshot {
  capacity: number;
  free: number;
  idle: number;
  running: number;
  accepting: boolean;
}

interface Lease {
  /** `<runId>/<task>` while busy. */
  key: string | null;
  timer: NodeJS.Timeout | null;
  /** The attempt (`<runId>/<task>/<attempt>`) that started on it last. */
  lastStarted?: string;
  /** The task queued behind another (`behind`): `go` when the lease is its. */
  next?: { behind: string; go: () => void };
  /** Handed to the queued task, which has not started yet: not given back meanwhile. */
  handedOver?: boolean;
}

export interface SlotTimings {
  /** A granted lease that no task uses in this time is given back. */
  evictionMs: number;
  /** After its task, a lease waits this long for the run's next task before it is given back. */
  lingerMs: number;
}

export class SlotPool {
  private permits = 0;
  private readonly leases = new Map<string, Lease>();
  /** Running tasks by key; a count, since two attempts of one task may overlap. */
  private readonly busyKeys = new Map<string, number>();
  private waiters: (() => void)[] = [];
  private accepting = true;

  private size: number;

  constructor(
    capacity: number,
    private readonly timings: SlotTimings,
  ) {
    checkCapacity(capacity);
    this.size = capacity;
  }

  /** Tasks run at once. The fleet may change it (`runner settings`): running tasks are not touched. */
  get capacity(): number {
    return this.size;
  }

  setCapacity(capacity: number): void {
    checkCapacity(capacity);
    this.size = capacity;
    this.wake();
  }

  /**
   * A task this runner started in an earlier process and found still running: it holds a slot
   * until it ends (`finishAdopted`), even past the capacity (it runs whatever we decide).
   */
  adopt(key: string): string {
    const id = randomUUID();
    this.leases.set(id, { key, timer: null });
    this.busyKeys.set(key, (this.busyKeys.get(key) ?? 0) + 1);
    return id;
  }

  finishAdopted(leaseId: string): void {
    this.finishRunning(leaseId);
    this.release(leaseId);
  }

  private get held(): number {
    return this.permits + this.leases.size;
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

  /**
   * Grants up to `want` leases, called under the permit of the reservation being answered
   * (that permit's slot is counted as free; other outstanding permits are not).
   */
  grant(want: number, opts: { underPermit?: boolean } = {}): string[] {
    // A reservation answered without a permit (pinned queues: a scheduled run, a fleet task that
    // claimed this instance) goes before the pool pollers' permits: the SDK may hold a permit for
    // every slot of an idle runner, which would starve it. Leases never exceed the capacity; a
    // pool poll that then finds no free slot is answered NoFreeSlot and asked elsewhere.
    const others = opts.underPermit === false ? 0 : Math.max(0, this.permits - 1);
    // A poll already in flight when the runner was disabled (or is stopping) grants nothing.
    const free = this.accepting ? this.capacity - this.leases.size - others : 0;
    const n = Math.max(0, Math.min(want, free));
    const ids: string[] = [];
    for (let i = 0; i < n; i++) {
      const id = randomUUID();
      this.leases.set(id, { key: null, timer: this.expireAfter(id, this.timings.evictionMs) });
      ids.push(id);
    }
    return ids;
  }

  /**
   * A task starts on a lease (`attempt`: which attempt, for a task queued behind it). Throws
   * `LeaseExpired` when the lease is gone and no slot is free.
   */
  startRunning(leaseId: string, key: string, attempt?: string): void {
    let lease = this.leases.get(leaseId);
    if (lease === undefined) {
      // An idle poll permit is only a possibility; a task in hand is not refused for it.
      if (this.leases.size >= this.capacity) {
        throw new RunfleetError('LeaseExpired', `lease ${leaseId} was given back and no slot is free`);
      }
      lease = { key: null, timer: null };
      this.leases.set(leaseId, lease);
    }
    if (lease.key !== null) throw new RunfleetError('LeaseExpired', `lease ${leaseId} is running ${lease.key}`);
    if (lease.timer) clearTimeout(lease.timer);
    lease.timer = null;
    lease.key = key;
    if (attempt !== undefined) lease.lastStarted = attempt;
    delete lease.handedOver;
    this.busyKeys.set(key, (this.busyKeys.get(key) ?? 0) + 1);
  }

  /**
   * Waits for a task the run queued behind attempt `behind` on a lease: until that attempt has
   * started there and ended (then `startRunning` at once: the lease is kept for it). The two
   * executions may reach the runner in either order, so the one behind waits for the other to
   * arrive too. Resolves at once when the lease is gone (`startRunning` decides). Throws
   * `LeaseExpired` when another task already waits there; rejects with the signal's reason when
   * aborted (nothing waits any more; an idle lease then lingers as usual).
   */
  async waitForLease(leaseId: string, behind: string, signal: AbortSignal): Promise<void> {
    const lease = this.leases.get(leaseId);
    if (!lease || (lease.key === null && lease.lastStarted === behind)) return;
    if (lease.next) throw new RunfleetError('LeaseExpired', `lease ${leaseId} already has a task waiting on it`);
    signal.throwIfAborted();
    await new Promise<void>((resolve, reject) => {
      const onAbort = () => {
        if (lease.next !== next) return;
        delete lease.next;
        if (lease.key === null && this.leases.get(leaseId) === lease) {
          if (lease.timer) clearTimeout(lease.timer);
          lease.timer = this.expireAfter(leaseId, this.timings.lingerMs);
        }
        reject(signal.reason);
      };
      const next = {
        behind,
        go: () => {
          signal.removeEventListener('abort', onAbort);
          resolve();
        },
      };
      lease.next = next;
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** The task on a lease ended: the task queued behind it gets it, else it lingers for the run's next task. */
  finishRunning(leaseId: string): void {
    const lease = this.leases.get(leaseId);
    if (!lease || lease.key === null) return;
    const count = (this.busyKeys.get(lease.key) ?? 1) - 1;
    if (count > 0) this.busyKeys.set(lease.key, count);
    else this.busyKeys.delete(lease.key);
    lease.key = null;
    const next = lease.next;
    if (next && next.behind === lease.lastStarted) {
      delete lease.next;
      lease.handedOver = true;
      // It starts at once; should it not, the slot is not held for ever.
      lease.timer = setTimeout(() => {
        delete lease.handedOver;
        this.release(leaseId);
      }, this.timings.evictionMs);
      lease.timer.unref();
      next.go();
      return;
    }
    lease.timer = this.expireAfter(leaseId, this.timings.lingerMs);
  }

  /** Gives an idle lease back at once (not one handed to a queued task). */
  release(leaseId: string): void {
    const lease = this.leases.get(leaseId);
    if (!lease || lease.key !== null || lease.handedOver || lease.next) return;
    if (lease.timer) clearTimeout(lease.timer);
    this.leases.delete(leaseId);
    this.wake();
  }

  isRunning(key: string): boolean {
    return this.busyKeys.has(key);
  }

  runningTasks(): string[] {
    return [...this.busyKeys.keys()];
  }

  snapshot(): SlotSnapshot {
    let running = 0;
    for (const n of this.busyKeys.values()) running += n;
    return {
      capacity: this.capacity,
      free: Math.max(0, this.capacity - this.leases.size),
      idle: this.leases.size - running,
      running,
      accepting: this.accepting,
    };
  }

  private expireAfter(leaseId: string, ms: number): NodeJS.Timeout {
    const timer = setTimeout(() => this.release(leaseId), ms);
    timer.unref();
    return timer;
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }
}

function checkCapacity(capacity: number): void {
  if (!Number.isInteger(capacity) || capacity < 1)
    throw new Error(`slot capacity must be a positive integer, got ${capacity}`);
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
