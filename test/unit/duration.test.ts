/** Durations as written in run files, and as shown to people. */
import { describe, expect, it } from 'vitest';
import { formatDuration, parseDuration } from '../../src/duration';

describe('parseDuration', () => {
  it.each([
    ['500ms', 500],
    ['90s', 90_000],
    ['10m', 600_000],
    ['1h', 3_600_000],
    ['1d', 86_400_000],
    ['1h30m', 5_400_000],
    ['1h30m15s250ms', 5_415_250],
    ['1.5h', 5_400_000],
    ['0.5s', 500],
    ['0.0004s', 0],
    ['0.0006s', 1],
    ['0s', 0],
    ['  2m  ', 120_000],
    ['1m1m', 120_000],
  ])('%j is %d ms', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it('tells "ms" from "m" followed by "s"', () => {
    expect(parseDuration('5ms')).toBe(5);
    expect(parseDuration('5m5s')).toBe(305_000);
  });

  it.each([
    '',
    ' ',
    '10',
    'ms',
    's10',
    '10 s',
    '10S',
    '1H',
    '-5s',
    '+5s',
    '1.s',
    '.5s',
    '1e3s',
    '10sec',
    '10w',
    '1h 30m',
    '1h,30m',
  ])('%j is not a duration', (text) => {
    expect(parseDuration(text)).toBeNull();
  });
});

describe('formatDuration', () => {
  it.each([
    [0, '0ms'],
    [1, '1ms'],
    [999, '999ms'],
    [1000, '1s'],
    [1499, '1s'],
    [1500, '2s'],
    [59_999, '1m'],
    [60_000, '1m'],
    [90_000, '1m30s'],
    [3_600_000, '1h'],
    [3_660_000, '1h1m'],
    [3_601_000, '1h1s'],
    [5_415_000, '1h30m15s'],
    [86_400_000, '24h'],
    [90_000_000, '25h'],
  ])('%d ms is %j', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });

  it('round-trips whole seconds through parseDuration', () => {
    for (const ms of [1000, 61_000, 3_599_000, 3_600_000, 5_415_000, 86_399_000]) {
      expect(parseDuration(formatDuration(ms))).toBe(ms);
    }
  });
});
