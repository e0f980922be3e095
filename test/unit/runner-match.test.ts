/** `runs_on`: which registered runners may take a task that asks for labels. */
import { describe, expect, it } from 'vitest';
import { hasLabels, matchRunners, type MatchCandidate } from '../../src/registry/match';

const runner = (name: string, extra: Partial<MatchCandidate> = {}): MatchCandidate => ({
  name,
  pool: 'ci',
  labels: {},
  drivers: ['process'],
  status: 'ready',
  enabled: true,
  ...extra,
});

describe('matchRunners', () => {
  const fleet = [
    runner('b-gpu', { labels: { os: 'linux', gpu: 'true' } }),
    runner('a-gpu', { labels: { os: 'linux', gpu: 'true', zone: 'x' } }),
    runner('cpu', { labels: { os: 'linux' } }),
    runner('off', { labels: { os: 'linux', gpu: 'true' }, enabled: false }),
    runner('away', { labels: { os: 'linux', gpu: 'true' }, status: 'idle' }),
    runner('dock', { labels: { os: 'linux', gpu: 'true' }, drivers: ['docker'] }),
    runner('other-pool', { pool: 'deploy', labels: { os: 'linux', gpu: 'true' } }),
  ];

  it('names the ready, enabled runners of the pool and driver with every label, in name order', () => {
    expect(matchRunners(fleet, { pool: 'ci', driver: 'process', labels: { os: 'linux', gpu: 'true' } })).toEqual({
      runners: ['a-gpu', 'b-gpu'],
      why: null,
    });
    expect(matchRunners(fleet, { pool: 'ci', driver: 'docker', labels: { gpu: 'true' } }).runners).toEqual(['dock']);
  });

  it('says why nobody matches, naming what the pool has', () => {
    const none = matchRunners(fleet, { pool: 'ci', driver: 'process', labels: { gpu: 'false' } });
    expect(none.runners).toEqual([]);
    expect(none.why).toContain('pool "ci" has 6 runners');
    expect(none.why).toContain('away {gpu=true,os=linux} idle');
    expect(none.why).toContain('dock {gpu=true,os=linux} no process driver');
    expect(none.why).toContain('and 1 more');
    const two = matchRunners([fleet[3] as MatchCandidate, fleet[2] as MatchCandidate], {
      pool: 'ci',
      driver: 'process',
      labels: { gpu: 'true' },
    });
    expect(two.why).toBe('pool "ci" has 2 runners: cpu {os=linux} other labels; off {gpu=true,os=linux} disabled');
    expect(matchRunners(fleet, { pool: 'nope', driver: 'process', labels: {} }).why).toBe(
      'pool "nope" has no registered runner',
    );
  });

  it('compares values exactly and ignores inherited keys', () => {
    expect(hasLabels({ gpu: 'true' }, { gpu: 'True' })).toBe(false);
    expect(hasLabels({}, { toString: 'x' })).toBe(false);
    expect(hasLabels({ a: '1', b: '2' }, { a: '1' })).toBe(true);
  });
});
