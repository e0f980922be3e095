/**
 * The control worker's runner keys (activities/runner-keys.ts): what `knownRunnerKeys` (the local
 * activity a run asks when it starts) answers from memory, and what it must not. The registry is
 * replaced by an injected read (its own checks are attacked in security-identity.test.ts); the
 * clock is a counter.
 */
import { describe, expect, it } from 'vitest';
import { createRunnerKeyActivities, KEY_CACHE_MS, type VouchedKey } from '../../activities/runner-keys';

type Registry = Record<string, VouchedKey | null>;

function setup(registry: Registry) {
  let clock = 1_000_000;
  const reads: string[] = [];
  const keys = createRunnerKeyActivities({
    requireProofs: true,
    operatorPublicKey: null,
    now: () => clock,
    readKey: async (name) => {
      reads.push(name);
      return registry[name] ?? null;
    },
  });
  return {
    keys,
    reads,
    registry,
    advance: (ms: number) => void (clock += ms),
  };
}

const v = (key: string, pool: string): VouchedKey => ({ key, pool });

/** Lets the background reads started by `knownRunnerKeys` settle. */
const settle = () => new Promise((resolve) => setImmediate(resolve));

describe('knownRunnerKeys: the keys a run takes from its control worker when it starts', () => {
  it('answers nothing before a run looked a runner up, then the keys of the pools asked about (as the operator admitted them), never others', async () => {
    const t = setup({ a: v('key-a', 'p'), b: v('key-b', 'q'), c: v('key-c', 'r') });
    expect(await t.keys.knownRunnerKeys({ pools: ['p'], runners: [] })).toEqual({
      required: true,
      keys: {},
      pools: {},
    });
    expect(await t.keys.runnerSigningKeys({ runners: ['a', 'b'] })).toEqual({
      required: true,
      keys: { a: 'key-a', b: 'key-b' },
      pools: { a: 'p', b: 'q' },
    });
    await t.keys.runnerSigningKeys({ runners: ['c'] });
    expect(t.reads).toEqual(['a', 'b', 'c']);
    expect(await t.keys.knownRunnerKeys({ pools: ['p'], runners: [] })).toEqual({
      required: true,
      keys: { a: 'key-a' },
      pools: { a: 'p' },
    });
    // A runner named (a pinned run's) is answered whatever its pool; an unknown pool answers nothing.
    expect(await t.keys.knownRunnerKeys({ pools: ['q', 'nowhere'], runners: ['c', 'never-met'] })).toEqual({
      required: true,
      keys: { b: 'key-b', c: 'key-c' },
      pools: { b: 'q', c: 'r' },
    });
    // From memory only: no read of the registry.
    expect(t.reads).toEqual(['a', 'b', 'c']);
  });

  it('never answers a runner nobody vouches for: it is looked up (and refused) as before', async () => {
    const t = setup({ vouched: v('key-v', 'p') });
    expect(await t.keys.runnerSigningKeys({ runners: ['vouched', 'stranger'] })).toEqual({
      required: true,
      keys: { vouched: 'key-v', stranger: null },
      pools: { vouched: 'p' },
    });
    expect((await t.keys.knownRunnerKeys({ pools: ['p'], runners: ['stranger'] })).keys).toEqual({ vouched: 'key-v' });
  });

  it('forgets a key after the cache time, and reads it again in the background past half of it: a purged runner drops out', async () => {
    const t = setup({ a: v('key-a', 'p') });
    await t.keys.runnerSigningKeys({ runners: ['a'] });
    t.advance(KEY_CACHE_MS / 2 - 1);
    expect((await t.keys.knownRunnerKeys({ pools: ['p'], runners: [] })).keys).toEqual({ a: 'key-a' });
    await settle();
    expect(t.reads).toEqual(['a']);
    // Past half its life: still answered, and read again meanwhile. The runner was purged since.
    t.advance(2);
    t.registry.a = null;
    expect((await t.keys.knownRunnerKeys({ pools: ['p'], runners: [] })).keys).toEqual({ a: 'key-a' });
    await settle();
    expect(t.reads).toEqual(['a', 'a']);
    expect((await t.keys.knownRunnerKeys({ pools: ['p'], runners: ['a'] })).keys).toEqual({});
    // A key nobody read again is not answered once its time is up.
    const u = setup({ b: v('key-b', 'p') });
    await u.keys.runnerSigningKeys({ runners: ['b'] });
    u.advance(KEY_CACHE_MS);
    expect((await u.keys.knownRunnerKeys({ pools: ['p'], runners: ['b'] })).keys).toEqual({});
  });

  it('follows a runner admitted again to another pool', async () => {
    const t = setup({ a: v('key-a', 'p') });
    await t.keys.runnerSigningKeys({ runners: ['a'] });
    t.registry.a = v('key-a2', 'q');
    await t.keys.runnerSigningKeys({ runners: ['a'], fresh: true });
    expect((await t.keys.knownRunnerKeys({ pools: ['p'], runners: [] })).keys).toEqual({});
    expect(await t.keys.knownRunnerKeys({ pools: ['q'], runners: [] })).toEqual({
      required: true,
      keys: { a: 'key-a2' },
      pools: { a: 'q' },
    });
  });

  it('reads a key about to expire once, however many runs ask meanwhile', async () => {
    const t = setup({ a: v('key-a', 'p') });
    await t.keys.runnerSigningKeys({ runners: ['a'] });
    t.advance(KEY_CACHE_MS / 2 + 1);
    await Promise.all(Array.from({ length: 20 }, () => t.keys.knownRunnerKeys({ pools: ['p'], runners: [] })));
    await settle();
    expect(t.reads).toEqual(['a', 'a']);
  });

  it('answers 64 runners and 16 pools at most', async () => {
    const registry: Registry = Object.fromEntries(Array.from({ length: 70 }, (_, i) => [`r${i}`, v(`key-${i}`, 'p')]));
    for (let i = 0; i < 20; i++) registry[`s${i}`] = v(`key-s${i}`, `pool-${i}`);
    const t = setup(registry);
    await t.keys.runnerSigningKeys({ runners: Object.keys(registry) });
    expect(Object.keys((await t.keys.knownRunnerKeys({ pools: ['p'], runners: [] })).keys)).toHaveLength(64);
    const pools = Array.from({ length: 20 }, (_, i) => `pool-${i}`);
    expect(Object.keys((await t.keys.knownRunnerKeys({ pools, runners: [] })).keys)).toHaveLength(16);
  });

  it('answers required: false, and nothing, where proofs are not required', async () => {
    const keys = createRunnerKeyActivities({
      requireProofs: false,
      operatorPublicKey: null,
      readKey: async () => v('k', 'p'),
    });
    expect(await keys.knownRunnerKeys({ pools: ['p'], runners: ['a'] })).toEqual({ required: false, keys: {} });
  });
});
