/** The compression codec's bound: a gzip bomb fails with InflateLimitError before it costs memory. */
import type { Payload } from '@temporalio/common';
import { describe, expect, it } from 'vitest';
import { CompressionCodec, payloadConverter } from '../../src/codec';
import { InflateLimitError, MAX_INFLATED_BYTES } from '../../src/codec/compression';
import { LIMITS } from '../../src/spec/schema';
import { gzipBomb, rss } from '../helpers/bombs';

const gz = (data: Buffer): Payload => ({ metadata: { encoding: new TextEncoder().encode('binary/gzip') }, data });

describe('CompressionCodec inflate limit', () => {
  it('stops a 512 MiB gzip bomb at its bound, without the memory', async () => {
    const bomb = gzipBomb(512);
    const before = rss();
    const err = await new CompressionCodec()
      .decode([gz(bomb)])
      .then(() => null)
      .catch((e: unknown) => e);
    const after = rss();
    console.log(
      `compression: a ${Math.round(bomb.length / 1024)} KiB payload inflating to 512 MiB -> ${String(err)}; ` +
        `RSS before ${before.now} MiB (peak ${before.peak}), after ${after.now} MiB (peak ${after.peak})`,
    );
    expect(err).toBeInstanceOf(InflateLimitError);
    expect((err as InflateLimitError).code).toBe('InvalidArgument');
    // Without the bound the peak grows by 512 MiB; with it by at most the bound (32 MiB) and change.
    expect(after.peak - before.peak).toBeLessThan(128);
  });

  it('still inflates the largest legitimate payload (a spec at its limit, with state)', async () => {
    const codec = new CompressionCodec();
    const big = { spec: 'x'.repeat(LIMITS.maxSpecBytes), state: 'y'.repeat(4 * 1024 * 1024) };
    const [encoded] = await codec.encode([payloadConverter.toPayload(big)]);
    const [decoded] = await codec.decode([encoded!]);
    console.log(`compression: an ${Math.round(decoded!.data!.length / 1024 / 1024)} MiB payload round-trips`);
    expect(payloadConverter.fromPayload(decoded!)).toEqual(big);
    expect(MAX_INFLATED_BYTES).toBeGreaterThan(3 * decoded!.data!.length);
  });

  it('takes a bound of its own', async () => {
    const codec = new CompressionCodec(1, 1000);
    const [encoded] = await codec.encode([payloadConverter.toPayload('z'.repeat(5000))]);
    const err = await codec.decode([encoded!]).catch((e: unknown) => e);
    console.log(`compression: 5 KB under a 1000-byte bound -> ${String(err)}`);
    expect(err).toBeInstanceOf(InflateLimitError);
    expect((err as InflateLimitError).limitBytes).toBe(1000);
  });
});
