/** A runner's slots: permits, leases (grant, eviction, busy, linger, release), accepting, abort. */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { RunfleetError } from '../../src/errors';
import { SlotPool, poolSlotSupplier } from '../../src/runner/slots';

/** Resolves to 'pending' when `p` has not settled after the queued microtasks and one macrotask. Real timers only. */
async function settled(p: Promise<unknown>): Promise<'resolved' | 'rejected' | 'pending'> {
  let state: 'resolved' | 'rejected' | 'pending' = 'pending';
  p.then(
    () => (state = 'resolved'),
    () => (state = 'rejected'),
  );
  await new Promise((r) => setImmediate(r));
  return state;
}

/** Tracks a promise's state synchronously (works under fake timers). */
function track(p: Promise<unknown>): { state: 'resolved' | 'rejected' | 'pending' } {
  const t = { state: 'pending' as 'resolved' | 'rejected' | 'pending' };
  p.then(
    () => (t.state = 'resolved'),
    () => (t.state = 'rejected'),
  );
  return t;
}

const never = () => new AbortController().signal;

const EVICT = 30_000;
const LINGER = 2_000;
const pool = (capacity: number, timings: { evictionMs?: number; lingerMs?: number } = {}) =>
  new SlotPool(capacity, { evictionMs: timings.evictionMs ?? EVICT, lingerMs: timings.lingerMs ?? LINGER });

/** Runs `fn` and returns what it threw (fails the test when it does not throw). */
function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected a throw');
}

function expectLeaseExpired(fn: () => unknown): void {
  const err = thrown(fn);
  expect(err).toBeInstanceOf(RunfleetError);
  expect((err as RunfleetError).code).toBe('LeaseExpired');
  expect((err as RunfleetError).source).toBe('internal');
}

afterEach(() => {
  vi.useRealTimers();
});

describe('SlotPool construction', () => {
  it('rejects a capacity that is not a positive integer', () => {
    const timings = { evictionMs: 1_000, lingerMs: 100 };
    expect(() => new SlotPool(0, timings)).toThrow('slot capacity must be a positive integer, got 0');
    expect(() => new SlotPool(-2, timings)).toThrow('slot capacity must be a positive integer, got -2');
    expect(() => new SlotPool(1.5, timings)).toThrow('slot capacity must be a positive integer, got 1.5');
    expect(() => new SlotPool(Number.NaN, timings)).toThrow('slot capacity must be a positive integer, got NaN');
    expect(() => new SlotPool(Number.POSITIVE_INFINITY, timings)).toThrow('slot capacity must be a positive integer');
  });

  it('accepts a positive integer capacity with timings and starts empty and accepting', () => {
    const p = new SlotPool(3, { evictionMs: 1_000, lingerMs: 100 });
    expect(p.capacity).toBe(3);
    expect(p.snapshot()).toEqual({ capacity: 3, free: 3, idle: 0, running: 0, accepting: true });
    expect(p.runningTasks()).toEqual([]);
  });
});

describe('SlotPool permits', () => {
  it('hands out permits up to capacity, then none; a release frees one', () => {
    const p = pool(2);
    expect(p.tryAcquirePermit()).toBe(true);
    expect(p.tryAcquirePermit()).toBe(true);
    expect(p.tryAcquirePermit()).toBe(false);
    p.releasePermit();
    expect(p.tryAcquirePermit()).toBe(true);
    expect(p.tryAcquirePermit()).toBe(false);
  });

  it('an extra releasePermit does not go below zero permits', () => {
    const p = pool(1);
    p.releasePermit();
    p.releasePermit();
    expect(p.tryAcquirePermit()).toBe(true);
    expect(p.tryAcquirePermit()).toBe(false);
  });

  it('a permit blocks at capacity and resumes when a permit is released', async () => {
    const p = pool(1);
    await p.acquirePermit(never());
    const waiting = p.acquirePermit(never());
    expect(await settled(waiting)).toBe('pending');
    p.releasePermit();
    expect(await settled(waiting)).toBe('resolved');
    // It took the slot: another permit must wait.
    expect(p.tryAcquirePermit()).toBe(false);
  });

  it('permits + leases count against capacity; a permit resumes when a lease is released', async () => {
    const p = pool(2);
    const [lease] = p.grant(1);
    expect(lease).toBeDefined();
    expect(p.tryAcquirePermit()).toBe(true); // 1 lease + 1 permit = capacity
    expect(p.tryAcquirePermit()).toBe(false);
    const waiting = p.acquirePermit(never());
    expect(await settled(waiting)).toBe('pending');
    p.release(lease!);
    expect(await settled(waiting)).toBe('resolved');
    expect(p.tryAcquirePermit()).toBe(false);
  });

  it('a busy lease holds its slot; finishing it does not free the slot (it lingers)', async () => {
    const p = pool(1);
    const [lease] = p.grant(1);
    p.startRunning(lease!, 'run-1/a');
    const waiting = p.acquirePermit(never());
    expect(await settled(waiting)).toBe('pending');
    p.finishRunning(lease!);
    expect(await settled(waiting)).toBe('pending');
    p.release(lease!);
    expect(await settled(waiting)).toBe('resolved');
  });

  it('setAccepting(false) blocks permits even with free slots; true resumes waiters', async () => {
    const p = pool(3);
    p.setAccepting(false);
    expect(p.snapshot()).toMatchObject({ accepting: false, free: 3 });
    expect(p.tryAcquirePermit()).toBe(false);
    const waiting = p.acquirePermit(never());
    // Other wake-ups (a slot freed) do not let it through while not accepting.
    p.releasePermit();
    const [lease] = p.grant(1);
    p.release(lease!);
    expect(await settled(waiting)).toBe('pending');
    p.setAccepting(true);
    expect(await settled(waiting)).toBe('resolved');
    expect(p.snapshot().accepting).toBe(true);
  });

  it('an abort rejects a waiting permit with exactly the signal reason', async () => {
    const p = pool(1);
    expect(p.tryAcquirePermit()).toBe(true);
    const controller = new AbortController();
    const waiting = p.acquirePermit(controller.signal);
    expect(await settled(waiting)).toBe('pending');
    const reason = new Error('poller shut down');
    controller.abort(reason);
    await expect(waiting).rejects.toBe(reason);
    // The aborted waiter holds nothing: once the slot frees, exactly one permit is available.
    p.releasePermit();
    expect(p.tryAcquirePermit()).toBe(true);
    expect(p.tryAcquirePermit()).toBe(false);
  });

  it('an already aborted signal rejects at once when no slot is free (default reason: AbortError)', async () => {
    const p = pool(1);
    expect(p.grant(1)).toHaveLength(1);
    const controller = new AbortController();
    controller.abort();
    const err = await p.acquirePermit(controller.signal).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBe(controller.signal.reason);
    expect((err as Error).name).toBe('AbortError');
  });
});

describe('SlotPool.grant', () => {
  it('under one permit grants min(want, free): the own permit counts as free, other permits do not', () => {
    const p = pool(4);
    expect(p.tryAcquirePermit()).toBe(true); // the reservation's own permit
    expect(p.tryAcquirePermit()).toBe(true); // another poller's permit
    const leases = p.grant(10);
    // 4 slots - 0 leases - 1 other permit = 3.
    expect(leases).toHaveLength(3);
    expect(new Set(leases).size).toBe(3);
    for (const id of leases) expect(typeof id).toBe('string');
    expect(p.snapshot()).toMatchObject({ free: 1, idle: 3, running: 0 });
    // Nothing left for a further grant under the same permit.
    expect(p.grant(1)).toEqual([]);
  });

  it('grants only what is wanted when more is free', () => {
    const p = pool(5);
    expect(p.tryAcquirePermit()).toBe(true);
    expect(p.grant(2)).toHaveLength(2);
    expect(p.snapshot()).toMatchObject({ free: 3, idle: 2 });
    // Own permit + 3 free slots, 2 already leased: 3 more.
    expect(p.grant(10)).toHaveLength(3);
    expect(p.grant(1)).toEqual([]);
  });

  it('with a single permit on a capacity-1 runner, grants the permit slot itself', () => {
    const p = pool(1);
    expect(p.tryAcquirePermit()).toBe(true);
    expect(p.grant(3)).toHaveLength(1);
    expect(p.grant(1)).toEqual([]);
  });

  it('returns [] when nothing is free (leases or other permits fill the runner), and for want <= 0', () => {
    const p = pool(2);
    expect(p.grant(0)).toEqual([]);
    expect(p.grant(-1)).toEqual([]);
    expect(p.grant(2)).toHaveLength(2);
    expect(p.grant(1)).toEqual([]);

    const q = pool(2);
    expect(q.tryAcquirePermit()).toBe(true);
    expect(q.tryAcquirePermit()).toBe(true);
    expect(q.grant(1)).toHaveLength(1); // own permit's slot
    expect(q.grant(1)).toEqual([]);
  });
});

describe('SlotPool lease eviction and linger', () => {
  it('an idle granted lease is given back after evictionMs (fake timers)', async () => {
    vi.useFakeTimers();
    const p = pool(1, { evictionMs: 30_000, lingerMs: 2_000 });
    expect(p.grant(1)).toHaveLength(1);
    const waiting = track(p.acquirePermit(never()));
    await vi.advanceTimersByTimeAsync(29_999);
    expect(waiting.state).toBe('pending');
    expect(p.snapshot()).toMatchObject({ free: 0, idle: 1 });
    await vi.advanceTimersByTimeAsync(1);
    expect(waiting.state).toBe('resolved');
    expect(p.snapshot()).toMatchObject({ free: 1, idle: 0, running: 0 });
  });

  it('evicts with a real short timer too', async () => {
    const p = pool(1, { evictionMs: 30, lingerMs: 10_000 });
    expect(p.grant(1)).toHaveLength(1);
    expect(p.snapshot().free).toBe(0);
    await p.acquirePermit(AbortSignal.timeout(2_000));
    expect(p.snapshot()).toMatchObject({ idle: 0, free: 1 });
  });

  it('startRunning makes a lease busy: no eviction while busy; isRunning and runningTasks', async () => {
    vi.useFakeTimers();
    const p = pool(2);
    const [lease] = p.grant(1);
    p.startRunning(lease!, 'run-1/a');
    expect(p.isRunning('run-1/a')).toBe(true);
    expect(p.isRunning('run-1/b')).toBe(false);
    expect(p.runningTasks()).toEqual(['run-1/a']);
    expect(p.snapshot()).toEqual({ capacity: 2, free: 1, idle: 0, running: 1, accepting: true });
    await vi.advanceTimersByTimeAsync(EVICT * 10);
    expect(p.isRunning('run-1/a')).toBe(true);
    expect(p.snapshot()).toMatchObject({ free: 1, idle: 0, running: 1 });
    expect(p.tryAcquirePermit()).toBe(true);
    expect(p.tryAcquirePermit()).toBe(false);
  });

  it('finishRunning: the lease lingers for lingerMs (not evictionMs), then is given back', async () => {
    vi.useFakeTimers();
    const p = pool(1, { evictionMs: 30_000, lingerMs: 2_000 });
    const [lease] = p.grant(1);
    p.startRunning(lease!, 'run-1/a');
    await vi.advanceTimersByTimeAsync(60_000);
    p.finishRunning(lease!);
    expect(p.isRunning('run-1/a')).toBe(false);
    expect(p.runningTasks()).toEqual([]);
    expect(p.snapshot()).toMatchObject({ free: 0, idle: 1, running: 0 });
    const waiting = track(p.acquirePermit(never()));
    await vi.advanceTimersByTimeAsync(1_999);
    expect(waiting.state).toBe('pending');
    expect(p.snapshot()).toMatchObject({ free: 0, idle: 1 });
    await vi.advanceTimersByTimeAsync(1);
    expect(waiting.state).toBe('resolved');
    expect(p.snapshot()).toMatchObject({ free: 1, idle: 0, running: 0 });
  });

  it('finishRunning on an idle or unknown lease changes nothing', async () => {
    vi.useFakeTimers();
    const p = pool(2, { evictionMs: 30_000, lingerMs: 2_000 });
    const [lease] = p.grant(1);
    p.finishRunning(lease!); // idle: must not switch its eviction to the (shorter) linger
    p.finishRunning('no-such-lease');
    await vi.advanceTimersByTimeAsync(2_000);
    expect(p.snapshot()).toMatchObject({ free: 1, idle: 1, running: 0 });
    await vi.advanceTimersByTimeAsync(28_000);
    expect(p.snapshot()).toMatchObject({ free: 2, idle: 0 });
  });

  it('a startRunning within lingerMs reuses the lease (no new slot, no give-back)', async () => {
    vi.useFakeTimers();
    const p = pool(2, { evictionMs: 30_000, lingerMs: 2_000 });
    const [lease] = p.grant(1);
    p.startRunning(lease!, 'run-1/a');
    p.finishRunning(lease!);
    await vi.advanceTimersByTimeAsync(1_500);
    p.startRunning(lease!, 'run-1/b');
    expect(p.isRunning('run-1/b')).toBe(true);
    expect(p.runningTasks()).toEqual(['run-1/b']);
    // Same lease: one slot held, not two.
    expect(p.snapshot()).toMatchObject({ free: 1, idle: 0, running: 1 });
    // The linger timer was cancelled: still busy well past it.
    await vi.advanceTimersByTimeAsync(EVICT * 2);
    expect(p.isRunning('run-1/b')).toBe(true);
    expect(p.snapshot()).toMatchObject({ free: 1, idle: 0, running: 1 });
    // And it lingers again after the second task.
    p.finishRunning(lease!);
    await vi.advanceTimersByTimeAsync(1_999);
    expect(p.snapshot()).toMatchObject({ free: 1, idle: 1 });
    await vi.advanceTimersByTimeAsync(1);
    expect(p.snapshot()).toMatchObject({ free: 2, idle: 0 });
  });
});

describe('SlotPool.startRunning on leases given back or busy', () => {
  it('a lease already given back still runs when a slot is free', async () => {
    vi.useFakeTimers();
    const p = pool(1, { evictionMs: 1_000, lingerMs: 500 });
    const [lease] = p.grant(1);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(p.snapshot()).toMatchObject({ free: 1, idle: 0 });
    p.startRunning(lease!, 'run-1/late');
    expect(p.isRunning('run-1/late')).toBe(true);
    expect(p.snapshot()).toMatchObject({ free: 0, idle: 0, running: 1 });
    expect(p.tryAcquirePermit()).toBe(false);
    // It is a lease like any other afterwards: lingers, then is given back.
    p.finishRunning(lease!);
    expect(p.snapshot()).toMatchObject({ free: 0, idle: 1, running: 0 });
    await vi.advanceTimersByTimeAsync(500);
    expect(p.snapshot()).toMatchObject({ free: 1, idle: 0 });
  });

  it('a lease never granted here also runs when a slot is free', () => {
    const p = pool(1);
    p.startRunning('never-granted', 'run-1/x');
    expect(p.isRunning('run-1/x')).toBe(true);
    expect(p.snapshot()).toMatchObject({ free: 0, running: 1 });
  });

  it('a lease given back throws LeaseExpired when no slot is free (leases hold them); nothing starts', async () => {
    vi.useFakeTimers();
    const p = pool(1, { evictionMs: 1_000, lingerMs: 500 });
    const [old] = p.grant(1);
    await vi.advanceTimersByTimeAsync(1_000);
    const [other] = p.grant(1);
    expect(other).toBeDefined();
    expect(other).not.toBe(old);
    expectLeaseExpired(() => p.startRunning(old!, 'run-1/late'));
    expect(p.isRunning('run-1/late')).toBe(false);
    expect(p.runningTasks()).toEqual([]);
    expect(p.snapshot()).toMatchObject({ free: 0, idle: 1, running: 0 });
    // The other lease is untouched and usable.
    p.startRunning(other!, 'run-2/a');
    expect(p.isRunning('run-2/a')).toBe(true);
  });

  it('a lease given back still runs when only an idle poll permit holds the slot', () => {
    const p = pool(1);
    expect(p.tryAcquirePermit()).toBe(true);
    p.startRunning('gone', 'run-1/a');
    expect(p.isRunning('run-1/a')).toBe(true);
    // The permit's poll may still bring a reservation: nothing is free to grant.
    expect(p.grant(1)).toEqual([]);
  });

  it('startRunning on a busy lease throws LeaseExpired and leaves the running task alone', () => {
    const p = pool(3);
    const [lease] = p.grant(1);
    p.startRunning(lease!, 'run-1/a');
    expectLeaseExpired(() => p.startRunning(lease!, 'run-1/b'));
    expect(p.isRunning('run-1/a')).toBe(true);
    expect(p.isRunning('run-1/b')).toBe(false);
    expect(p.runningTasks()).toEqual(['run-1/a']);
    expect(p.snapshot()).toMatchObject({ free: 2, idle: 0, running: 1 });
    // Same key again on the busy lease: refused too.
    expectLeaseExpired(() => p.startRunning(lease!, 'run-1/a'));
  });
});

describe('SlotPool.release', () => {
  it('gives an idle lease back at once and wakes a waiter; repeats and unknown ids are no-ops', async () => {
    const p = pool(1);
    const [lease] = p.grant(1);
    const waiting = p.acquirePermit(never());
    expect(await settled(waiting)).toBe('pending');
    p.release(lease!);
    expect(await settled(waiting)).toBe('resolved');
    p.release(lease!);
    p.release('no-such-lease');
    expect(p.snapshot()).toMatchObject({ free: 1, idle: 0, running: 0 });
    expect(p.tryAcquirePermit()).toBe(false); // the woken waiter holds the only permit
  });

  it('gives a lingering lease back at once', () => {
    const p = pool(1);
    const [lease] = p.grant(1);
    p.startRunning(lease!, 'run-1/a');
    p.finishRunning(lease!);
    expect(p.snapshot()).toMatchObject({ free: 0, idle: 1 });
    p.release(lease!);
    expect(p.snapshot()).toMatchObject({ free: 1, idle: 0 });
    expect(p.tryAcquirePermit()).toBe(true);
  });

  it('does nothing to a busy lease', async () => {
    const p = pool(1);
    const [lease] = p.grant(1);
    p.startRunning(lease!, 'run-1/a');
    const waiting = p.acquirePermit(never());
    p.release(lease!);
    expect(await settled(waiting)).toBe('pending');
    expect(p.isRunning('run-1/a')).toBe(true);
    expect(p.snapshot()).toMatchObject({ free: 0, idle: 0, running: 1 });
    // Still the same busy lease: it is not re-created as a fresh one.
    expectLeaseExpired(() => p.startRunning(lease!, 'run-1/b'));
    p.finishRunning(lease!);
    p.release(lease!);
    expect(await settled(waiting)).toBe('resolved');
  });
});

describe('SlotPool.snapshot', () => {
  it('reports capacity, free (leases only, not permits), idle, running and accepting', () => {
    const p = pool(5);
    const leases = p.grant(3);
    expect(leases).toHaveLength(3);
    p.startRunning(leases[0]!, 'run-1/a');
    expect(p.snapshot()).toEqual({ capacity: 5, free: 2, idle: 2, running: 1, accepting: true });
    expect(p.tryAcquirePermit()).toBe(true);
    expect(p.snapshot()).toEqual({ capacity: 5, free: 2, idle: 2, running: 1, accepting: true });
    p.startRunning(leases[1]!, 'run-1/b');
    p.release(leases[2]!);
    p.setAccepting(false);
    expect(p.snapshot()).toEqual({ capacity: 5, free: 3, idle: 0, running: 2, accepting: false });
    expect(p.runningTasks().sort()).toEqual(['run-1/a', 'run-1/b']);
  });

  it('two leases running the same task key are both counted as running', () => {
    // A task's key is `<runId>/<task>`. An idempotent task retried after a heartbeat timeout can
    // start again (attempt 2) while attempt 1 still runs on another lease of the same runner.
    const p = pool(3);
    const [a, b] = p.grant(2);
    p.startRunning(a!, 'run-1/build');
    p.startRunning(b!, 'run-1/build');
    expect(p.snapshot()).toMatchObject({ free: 1, idle: 0, running: 2 });
    p.finishRunning(a!);
    // Attempt 2 still runs: its log is not complete.
    expect(p.isRunning('run-1/build')).toBe(true);
    expect(p.snapshot()).toMatchObject({ idle: 1, running: 1 });
  });
});

describe('poolSlotSupplier', () => {
  it('reserveSlot takes a permit, tryReserveSlot respects capacity, releaseSlot frees', async () => {
    const p = pool(1);
    const supplier = poolSlotSupplier(p);
    expect(supplier.type).toBe('custom');
    const ctx = {} as Parameters<typeof supplier.tryReserveSlot>[0];
    const releaseCtx = {} as Parameters<typeof supplier.releaseSlot>[0];
    expect(await supplier.reserveSlot(ctx, never())).toEqual({});
    expect(p.tryAcquirePermit()).toBe(false);
    expect(supplier.tryReserveSlot(ctx)).toBeNull();
    supplier.releaseSlot(releaseCtx);
    expect(supplier.tryReserveSlot(ctx)).toEqual({});
    expect(p.tryAcquirePermit()).toBe(false);
    supplier.releaseSlot(releaseCtx);
    expect(p.tryAcquirePermit()).toBe(true);
  });

  it('reserveSlot waits while leases fill the runner and rejects with the abort reason', async () => {
    const p = pool(1);
    const supplier = poolSlotSupplier(p);
    const ctx = {} as Parameters<typeof supplier.reserveSlot>[0];
    const [lease] = p.grant(1);
    expect(supplier.tryReserveSlot(ctx)).toBeNull();
    const waiting = supplier.reserveSlot(ctx, never());
    expect(await settled(waiting)).toBe('pending');
    p.release(lease!);
    expect(await settled(waiting)).toBe('resolved');
    await expect(waiting).resolves.toEqual({});

    const controller = new AbortController();
    const blocked = supplier.reserveSlot(ctx, controller.signal);
    expect(await settled(blocked)).toBe('pending');
    const reason = new Error('worker shutdown');
    controller.abort(reason);
    await expect(blocked).rejects.toBe(reason);
  });
});

describe('SlotPool pinned grants', () => {
  it('go before the pool pollers permits, and never past the capacity', () => {
    const slots = pool(2);
    // An idle runner: the SDK holds a permit for every slot.
    expect(slots.tryAcquirePermit()).toBe(true);
    expect(slots.tryAcquirePermit()).toBe(true);
    // A pinned reservation (no permit of its own) is granted all the same...
    expect(slots.grant(5, { underPermit: false })).toHaveLength(2);
    // ...and no further: leases never exceed the capacity, pinned or pooled.
    expect(slots.grant(1, { underPermit: false })).toHaveLength(0);
    expect(slots.grant(1)).toHaveLength(0);
  });
});

describe('SlotPool: a task queued behind another on its lease', () => {
  it('starts the moment the one ahead ends: no linger, and the lease is not given back meanwhile', async () => {
    vi.useFakeTimers();
    const p = pool(1);
    const [lease] = p.grant(1);
    p.startRunning(lease!, 'run/a', 'run/a/1');
    const waiting = track(p.waitForLease(lease!, 'run/a/1', never()));
    await vi.advanceTimersByTimeAsync(10);
    expect(waiting.state).toBe('pending');
    // The task ahead ends and its activity gives the lease back, as after a failure: the queued
    // task has it all the same.
    p.finishRunning(lease!);
    p.release(lease!);
    await vi.advanceTimersByTimeAsync(0);
    expect(waiting.state).toBe('resolved');
    expect(p.snapshot()).toMatchObject({ free: 0, idle: 1 });
    p.startRunning(lease!, 'run/b', 'run/b/1');
    // Past the linger and the eviction: still running, still held.
    await vi.advanceTimersByTimeAsync(EVICT + LINGER);
    expect(p.snapshot()).toMatchObject({ running: 1, free: 0 });
  });

  it('waits for the task ahead to arrive when it overtook it, and holds the idle lease meanwhile', async () => {
    vi.useFakeTimers();
    const p = pool(1);
    const [lease] = p.grant(1);
    const waiting = track(p.waitForLease(lease!, 'run/a/1', never()));
    // Idle past the eviction: not given back while a task waits on it.
    await vi.advanceTimersByTimeAsync(EVICT + 1);
    expect(waiting.state).toBe('pending');
    expect(p.snapshot()).toMatchObject({ free: 0 });
    // Another task ending there is not the one it waits behind.
    p.startRunning(lease!, 'run/z', 'run/z/1');
    p.finishRunning(lease!);
    await vi.advanceTimersByTimeAsync(LINGER + 1);
    expect(waiting.state).toBe('pending');
    p.startRunning(lease!, 'run/a', 'run/a/1');
    p.finishRunning(lease!);
    await vi.advanceTimersByTimeAsync(0);
    expect(waiting.state).toBe('resolved');
  });

  it('does not wait once the task ahead ran, nor for an unknown lease; refuses a second waiter', async () => {
    const p = pool(2);
    const [a, b] = p.grant(2);
    p.startRunning(a!, 'run/x', 'run/x/1');
    p.finishRunning(a!);
    await expect(p.waitForLease(a!, 'run/x/1', never())).resolves.toBeUndefined();
    await expect(p.waitForLease('no-such-lease', 'run/x/1', never())).resolves.toBeUndefined();
    p.startRunning(b!, 'run/y', 'run/y/1');
    const first = p.waitForLease(b!, 'run/y/1', never());
    await expect(p.waitForLease(b!, 'run/y/1', never())).rejects.toMatchObject({ code: 'LeaseExpired' });
    p.finishRunning(b!);
    await expect(first).resolves.toBeUndefined();
  });

  it('an aborted wait leaves the lease to linger and be given back as usual', async () => {
    vi.useFakeTimers();
    const p = pool(1);
    const [lease] = p.grant(1);
    const controller = new AbortController();
    // Waiting for a task that never comes (cancelled before its runner got it), past the eviction.
    const waiting = p.waitForLease(lease!, 'run/a/1', controller.signal);
    await vi.advanceTimersByTimeAsync(EVICT + 1);
    const reason = new Error('gave up');
    controller.abort(reason);
    await expect(waiting).rejects.toBe(reason);
    expect(p.snapshot()).toMatchObject({ idle: 1, free: 0 });
    await vi.advanceTimersByTimeAsync(LINGER);
    expect(p.snapshot()).toMatchObject({ idle: 0, free: 1 });
  });

  it('a lease handed to a queued task that never starts is given back after the eviction time', async () => {
    vi.useFakeTimers();
    const p = pool(1);
    const [lease] = p.grant(1);
    p.startRunning(lease!, 'run/a', 'run/a/1');
    const waiting = track(p.waitForLease(lease!, 'run/a/1', never()));
    p.finishRunning(lease!);
    await vi.advanceTimersByTimeAsync(0);
    expect(waiting.state).toBe('resolved');
    await vi.advanceTimersByTimeAsync(EVICT - 1);
    expect(p.snapshot()).toMatchObject({ free: 0 });
    await vi.advanceTimersByTimeAsync(1);
    expect(p.snapshot()).toMatchObject({ free: 1 });
  });
});
