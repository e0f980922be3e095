/**
 * The cost of scoped data keys per task payload: encoding and decoding a task's execution input
 * through Runfleet's data converter when it is encrypted with its runner's derived key (the new
 * path) against the same payload encrypted with the control key alone (main's path before scoped
 * keys), in the same process and run. Also the bytes each adds on the wire.
 *
 *   npx tsx bench/scoped-keys.ts [--payloads 20000] [--bytes 1500]
 *
 * Both sides run the payload converter, the compression codec (a no-op below 64 KiB) and the
 * encryption codec, the order the SDK runs them; the scoped side also marks the value with its
 * scope (what workflows/key-scope.ts does) and decodes with a runner's ring of sealed keys.
 */
import { performance } from 'node:perf_hooks';
import type { Payload } from '@temporalio/common';
import { CompressionCodec, EncryptionCodec, KeyRing, newDataKey, payloadConverter, scopedValue } from '../src/codec';
import { runnerKeyScopes } from '../src/ids';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

const count = arg('payloads', 20_000);
const bytes = arg('bytes', 1_500);
const control = new KeyRing([newDataKey()]);
const runnerRing = new KeyRing(control.keysFor(runnerKeyScopes('runner-1', 'linux')));
const task = {
  runId: 'run/project/main/m3k2a9x1',
  leaseId: 'l-1',
  attempt: 1,
  task: { name: 'build', steps: ['x'.repeat(bytes)] },
};

async function side(name: string, scoped: boolean): Promise<{ name: string; usPerPayload: number; wireBytes: number }> {
  const compress = new CompressionCodec();
  const sender = new EncryptionCodec(control);
  const receiver = new EncryptionCodec(scoped ? runnerRing : control);
  let wire = 0;
  const run = async (n: number) => {
    for (let i = 0; i < n; i++) {
      const value = scoped ? scopedValue('runner/runner-1', task) : task;
      const encoded = await sender.encode(await compress.encode([payloadConverter.toPayload(value)]));
      wire = wireSize(encoded[0] as Payload);
      const decoded = await compress.decode(await receiver.decode(encoded));
      payloadConverter.fromPayload(decoded[0] as Payload);
    }
  };
  await run(Math.min(2_000, count)); // warm-up: JIT and the derived-key cache
  const started = performance.now();
  await run(count);
  return { name, usPerPayload: ((performance.now() - started) * 1000) / count, wireBytes: wire };
}

function wireSize(p: Payload): number {
  let n = p.data?.length ?? 0;
  for (const [k, v] of Object.entries(p.metadata ?? {})) n += k.length + (v?.length ?? 0);
  return n;
}

async function main(): Promise<void> {
  const rows: { name: string; usPerPayload: number; wireBytes: number }[] = [];
  // Alternate the order so neither side always runs on a warmer process.
  for (const order of [
    [false, true],
    [true, false],
  ]) {
    for (const scoped of order)
      rows.push(await side(scoped ? 'scoped (runner key)' : 'control key (baseline)', scoped));
  }
  const mean = (n: string) => {
    const r = rows.filter((x) => x.name === n);
    return { us: r.reduce((a, x) => a + x.usPerPayload, 0) / r.length, wire: r[0]?.wireBytes ?? 0 };
  };
  const base = mean('control key (baseline)');
  const scoped = mean('scoped (runner key)');
  console.log(`payloads: ${count} of a ${bytes}-byte task input, encode + decode each`);
  console.log('| side | µs per payload | bytes on the wire |');
  console.log('| --- | --- | --- |');
  console.log(`| control key (baseline) | ${base.us.toFixed(1)} | ${base.wire} |`);
  console.log(`| scoped (runner key) | ${scoped.us.toFixed(1)} | ${scoped.wire} |`);
  console.log(
    `ratio scoped / baseline: time ${(scoped.us / base.us).toFixed(2)}, bytes ${(scoped.wire / base.wire).toFixed(3)}`,
  );
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
