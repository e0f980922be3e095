/** A runner's slots: permits, reservations with eviction, running tasks, accepting, abort. */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { SlotPool, poolSlotSupplier } from '../../src/runner/slots';

/** Resolves to 'pending' when `p` has not settled after the queued microtasks and one macrotask. */
async function settled(p: Promise<unknown>): Promise<'resolved' | 'rejected' | 'pending'> {
  let state: 'resolved' | 'rejected' | 'pending' = 'pending';
  p.then(
    () => (state = 'resolved'),
    () => (state = 'rejected'),
  );
  await new Promise((r) => setImmediate(r));
  return state;
}

const never = () => new AbortController().signal;

afterEach(() => {
  vi.useRealTimers();
});

describe('SlotPool', () => {
  it('rejects a capacity that is not a positive integer', () => {
    expect(() => new SlotPool(0, 1000)).toThrow('slot capacity must be a positive integer, got 0');
    expect(() => new SlotPool(1.5, 1000)).toThrow('slot capacity must be a positive integer, got 1.5');
  });

  it('hands out permits up to capacity, then none', () => {
    const pool = new SlotPool(2, 1000);
    expect(pool.tryAcquirePermit()).toBe(true);
    expect(pool.tryAcquirePermit()).toBe(true);
    expect(pool.tryAcquirePermit()).toBe(false);
    pool.releasePermit();
    expect(pool.tryAcquirePermit()).toBe(true);
  });

  it('a permit blocks at capacity and resumes when a slot frees', async () => {
    const pool = new SlotPool(1, 1000);
    await pool.acquirePermit(never());
    const waiting = pool.acquirePermit(never());
    expect(await settled(waiting)).toBe('pending');
    pool.releasePermit();
    expect(await settled(waiting)).toBe('resolved');
    // It took the slot: a third permit must wait.
    expect(pool.tryAcquirePermit()).toBe(false);
  });

  it('reservations and running tasks count against capacity', async () => {
    const pool = new SlotPool(2, 60_000);
    const r1 = pool.reserve();
    pool.reserve();
    expect(pool.snapshot()).toEqual({ capacity: 2, free: 0, reservations: 2, running: 0, accepting: true });
    expect(pool.tryAcquirePermit()).toBe(false);

    const waiting = pool.acquirePermit(never());
    pool.startRunning(r1, 'run-1/build');
    // Converting a reservation frees nothing: still full.
    expect(await settled(waiting)).toBe('pending');
    expect(pool.snapshot()).toMatchObject({ free: 0, reservations: 1, running: 1 });
    expect(pool.isRunning('run-1/build')).toBe(true);
    expect(pool.runningTasks()).toEqual(['run-1/build']);

    pool.finishRunning('run-1/build');
    expect(await settled(waiting)).toBe('resolved');
    expect(pool.isRunning('run-1/build')).toBe(false);
    expect(pool.runningTasks()).toEqual([]);
  });

  it('release gives a reservation back at once and wakes a waiter; a second release is a no-op', async () => {
    const pool = new SlotPool(1, 60_000);
    const id = pool.reserve();
    const waiting = pool.acquirePermit(never());
    expect(await settled(waiting)).toBe('pending');
    pool.release(id);
    expect(await settled(waiting)).toBe('resolved');
    pool.release(id);
    pool.release('no-such-reservation');
    expect(pool.snapshot()).toMatchObject({ reservations: 0, running: 0 });
    expect(pool.tryAcquirePermit()).toBe(false);
  });

  it('evicts a reservation not used within evictionMs, giving its slot back (fake timers)', async () => {
    vi.useFakeTimers();
    const pool = new SlotPool(1, 30_000);
    pool.reserve();
    const waiting = pool.acquirePermit(never());
    let got = false;
    void waiting.then(() => (got = true));
    await vi.advanceTimersByTimeAsync(29_999);
    expect(got).toBe(false);
    expect(pool.snapshot()).toMatchObject({ free: 0, reservations: 1 });
    await vi.advanceTimersByTimeAsync(1);
    expect(got).toBe(true);
    expect(pool.snapshot()).toMatchObject({ reservations: 0 });
  });

  it('evicts with a real short timer too', async () => {
    const pool = new SlotPool(1, 30);
    pool.reserve();
    expect(pool.snapshot().free).toBe(0);
    await pool.acquirePermit(AbortSignal.timeout(2_000));
    expect(pool.snapshot()).toMatchObject({ reservations: 0 });
  });

  it('startRunning converts a reservation: no eviction afterwards', async () => {
    vi.useFakeTimers();
    const pool = new SlotPool(1, 1_000);
    const id = pool.reserve();
    pool.startRunning(id, 'run-1/a');
    expect(pool.snapshot()).toEqual({ capacity: 1, free: 0, reservations: 0, running: 1, accepting: true });
    await vi.advanceTimersByTimeAsync(5_000);
    expect(pool.snapshot()).toMatchObject({ free: 0, running: 1 });
    expect(pool.tryAcquirePermit()).toBe(false);
    pool.finishRunning('run-1/a');
    expect(pool.tryAcquirePermit()).toBe(true);
  });

  it('startRunning after eviction still runs the task', async () => {
    vi.useFakeTimers();
    const pool = new SlotPool(1, 1_000);
    const id = pool.reserve();
    await vi.advanceTimersByTimeAsync(1_000);
    expect(pool.snapshot()).toMatchObject({ reservations: 0, free: 1 });
    pool.startRunning(id, 'run-1/late');
    expect(pool.isRunning('run-1/late')).toBe(true);
    expect(pool.snapshot()).toMatchObject({ reservations: 0, running: 1, free: 0 });
  });

  it('setAccepting(false) blocks permits even with free slots; true resumes waiters', async () => {
    const pool = new SlotPool(3, 1000);
    pool.setAccepting(false);
    expect(pool.snapshot()).toMatchObject({ accepting: false, free: 3 });
    expect(pool.tryAcquirePermit()).toBe(false);
    const waiting = pool.acquirePermit(never());
    // Other wake-ups (a slot freed) do not let it through while not accepting.
    pool.releasePermit();
    expect(await settled(waiting)).toBe('pending');
    pool.setAccepting(true);
    expect(await settled(waiting)).toBe('resolved');
    expect(pool.snapshot().accepting).toBe(true);
  });

  it('an abort rejects a waiting permit with exactly the signal reason', async () => {
    const pool = new SlotPool(1, 1000);
    expect(pool.tryAcquirePermit()).toBe(true);
    const controller = new AbortController();
    const waiting = pool.acquirePermit(controller.signal);
    expect(await settled(waiting)).toBe('pending');
    const reason = new Error('poller shut down');
    controller.abort(reason);
    await expect(waiting).rejects.toBe(reason);
    // The aborted waiter holds nothing: once the slot frees, one permit is available.
    pool.releasePermit();
    expect(pool.tryAcquirePermit()).toBe(true);
    expect(pool.tryAcquirePermit()).toBe(false);
  });

  it('an already aborted signal rejects at once when no slot is free (default reason: AbortError)', async () => {
    const pool = new SlotPool(1, 1000);
    pool.reserve();
    const controller = new AbortController();
    controller.abort();
    const err = await pool.acquirePermit(controller.signal).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBe(controller.signal.reason);
    expect((err as Error).name).toBe('AbortError');
  });
});

describe('poolSlotSupplier', () => {
  it('reserves, tries and releases through the pool', async () => {
    const pool = new SlotPool(1, 1000);
    const supplier = poolSlotSupplier(pool);
    expect(supplier.type).toBe('custom');
    const ctx = {} as Parameters<typeof supplier.tryReserveSlot>[0];
    expect(await supplier.reserveSlot(ctx, never())).toEqual({});
    expect(supplier.tryReserveSlot(ctx)).toBeNull();
    supplier.releaseSlot({} as Parameters<typeof supplier.releaseSlot>[0]);
    expect(supplier.tryReserveSlot(ctx)).toEqual({});
  });
});
