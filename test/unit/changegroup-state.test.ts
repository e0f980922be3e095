/** The changegroup's state machine: versions, limits, FIFO admission, releases. */
import { describe, expect, it } from 'vitest';
import {
  MAX_LIMIT,
  hasRun,
  initialState,
  limitProblem,
  release,
  setLimit,
  staleTokenProblem,
  submit,
  touch,
} from '../../src/changegroup/state';
import { decodeUpdateToken, encodeUpdateToken } from '../../src/changegroup/token';

describe('changegroup state', () => {
  it('starts at version 0 with no limit and no runs', () => {
    expect(initialState('p')).toEqual({ name: 'p', version: 0, limit: null, active: [], queued: [], submitted: 0 });
  });

  it('admits every run when there is no limit', () => {
    const s = initialState('p');
    expect(submit(s, 'a')).toEqual({ seq: 1, admitted: true, version: 1 });
    expect(submit(s, 'b')).toEqual({ seq: 2, admitted: true, version: 2 });
    expect(s.active).toEqual(['a', 'b']);
    expect(s.queued).toEqual([]);
  });

  it('queues past the limit and admits in submission order as slots free', () => {
    const s = initialState('p');
    setLimit(s, 2);
    for (const id of ['a', 'b', 'c', 'd', 'e']) submit(s, id);
    expect(s.active).toEqual(['a', 'b']);
    expect(s.queued).toEqual(['c', 'd', 'e']);
    expect(release(s, 'b')).toEqual({ admit: ['c'] });
    expect(release(s, 'a')).toEqual({ admit: ['d'] });
    expect(s.active).toEqual(['c', 'd']);
    expect(s.queued).toEqual(['e']);
    expect(s.submitted).toBe(5);
  });

  it('a new run waits behind queued runs even if a slot is free', () => {
    const s = initialState('p');
    setLimit(s, 1);
    submit(s, 'a');
    submit(s, 'b');
    // Lowering then raising cannot let a newcomer jump the queue: the raise admits b first.
    expect(setLimit(s, 2)).toEqual({ admit: ['b'] });
    expect(submit(s, 'c').admitted).toBe(false);
  });

  it('releasing a queued run drops it from the queue without admitting anyone', () => {
    const s = initialState('p');
    setLimit(s, 1);
    submit(s, 'a');
    submit(s, 'b');
    submit(s, 'c');
    expect(release(s, 'b')).toEqual({ admit: [] });
    expect(s.queued).toEqual(['c']);
    expect(release(s, 'a')).toEqual({ admit: ['c'] });
    expect(hasRun(s, 'b')).toBe(false);
  });

  it('a lower limit stops no active run; it holds back admissions until enough have ended', () => {
    const s = initialState('p');
    for (const id of ['a', 'b', 'c']) submit(s, id);
    setLimit(s, 1);
    submit(s, 'd');
    expect(release(s, 'a')).toEqual({ admit: [] });
    expect(release(s, 'b')).toEqual({ admit: [] });
    expect(release(s, 'c')).toEqual({ admit: ['d'] });
  });

  it('bumps the version on every mutation, and not on a release of an unknown run', () => {
    const s = initialState('p');
    submit(s, 'a'); // 1
    setLimit(s, 3); // 2
    touch(s); // 3
    release(s, 'a'); // 4
    expect(s.version).toBe(4);
    release(s, 'a');
    release(s, 'nobody');
    expect(s.version).toBe(4);
  });

  it('a token is stale once the version moved; no token is never stale', () => {
    const s = initialState('p');
    expect(staleTokenProblem(s, 0)).toBeNull();
    expect(staleTokenProblem(s, undefined)).toBeNull();
    submit(s, 'a');
    expect(staleTokenProblem(s, 0)).toMatch(/changegroup "p" changed since the update token was read/);
    expect(staleTokenProblem(s, 1)).toBeNull();
  });

  it('keeps only active and queued runs: 1,000 finished runs leave nothing behind', () => {
    const s = initialState('p');
    setLimit(s, 2);
    for (let i = 0; i < 1000; i++) submit(s, `r${i}`);
    for (let i = 0; i < 1000; i++) release(s, `r${i}`);
    expect(s.active).toEqual([]);
    expect(s.queued).toEqual([]);
    expect(s.submitted).toBe(1000);
    // Plain JSON: survives continue-as-new unchanged.
    expect(JSON.parse(JSON.stringify(s))).toEqual(s);
  });

  it('checks limits', () => {
    expect(limitProblem(null)).toBeNull();
    expect(limitProblem(1)).toBeNull();
    expect(limitProblem(MAX_LIMIT)).toBeNull();
    for (const bad of [0, -1, 1.5, MAX_LIMIT + 1, '2', undefined]) expect(limitProblem(bad)).not.toBeNull();
  });
});

describe('update tokens', () => {
  it('round-trip versions and refuse anything else', () => {
    const token = encodeUpdateToken({ b: 3, a: 0 });
    expect(decodeUpdateToken(token)).toEqual({ a: 0, b: 3 });
    expect(encodeUpdateToken({ a: 0, b: 3 })).toBe(token);
    for (const bad of [
      '',
      'nope',
      'cg1.',
      'cg1.!!!',
      encodeUpdateToken({}),
      'cg1.' + Buffer.from('[1]').toString('base64url'),
    ])
      expect(() => decodeUpdateToken(bad)).toThrow(expect.objectContaining({ code: 'InvalidArgument' }));
  });
});
