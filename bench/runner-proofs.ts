/**
 * The CPU cost of runner proofs per task: what a runner signs (node:crypto) and a run verifies
 * (@noble/curves, pure JavaScript as in the workflow sandbox) for one task, against a baseline in
 * the same process and run: building the same canonical statements without any signature.
 *
 *   npx tsx bench/runner-proofs.ts [--tasks 2000]
 *
 * A task costs one execution result, plus its share of a reservation (a reservation answer grants
 * up to 100 leases, and a lease serves the run's next task too: counted here as one per task, the
 * worst case). Lookups and reports only happen for lost tasks.
 */
import { generateKeyPairSync } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { runnerStatementBytes, verifyRunnerProof, type RunnerMessage } from '../src/security/runner-proof';
import { createRunnerSigner } from '../src/security/runner-signer';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

const tasks = arg('tasks', 2_000);
const { privateKey, publicKey } = generateKeyPairSync('ed25519');
const seed = Buffer.from(privateKey.export({ format: 'jwk' }).d as string, 'base64url').toString('base64');
const key = Buffer.from(publicKey.export({ format: 'jwk' }).x as string, 'base64url').toString('base64');
const signer = createRunnerSigner(seed);

function messages(i: number): RunnerMessage[] {
  const at = new Date(1_700_000_000_000 + i).toISOString();
  return [
    {
      about: 'reservation',
      run: 'run/bench/r1',
      runner: 'bench-1',
      nonce: `n/${i}`,
      taskQueue: 'runner/bench-1',
      leases: [`lease-${i}`],
    },
    {
      about: 'execution',
      run: 'run/bench/r1',
      task: `t${i}`,
      attempt: 1,
      runner: 'bench-1',
      lease: `lease-${i}`,
      outcome: { exitCode: 0, failedStep: null, startedAt: at, finishedAt: at },
    },
  ];
}

function time(label: string, fn: (i: number) => void): number {
  for (let i = 0; i < 50; i++) fn(i); // warm up (noble precomputes its tables on first use)
  const start = performance.now();
  for (let i = 0; i < tasks; i++) fn(i);
  const ms = performance.now() - start;
  return ms / tasks;
}

const all = Array.from({ length: tasks + 50 }, (_, i) => messages(i));
const baseline = time('statements only', (i) => {
  for (const m of all[i] as RunnerMessage[]) runnerStatementBytes(m);
});
const signed = all.map((ms) => ms.map((m) => ({ m, proof: signer.sign(m) })));
const sign = time('sign (runner, node:crypto)', (i) => {
  for (const m of all[i] as RunnerMessage[]) signer.sign(m);
});
const verify = time('verify (run, @noble/curves)', (i) => {
  for (const { m, proof } of signed[i] as { m: RunnerMessage; proof: string }[])
    if (!verifyRunnerProof(key, m, proof)) throw new Error('a valid proof did not verify');
});

const row = (label: string, msPerTask: number) =>
  console.log(
    `${label.padEnd(34)} ${(msPerTask * 1000).toFixed(1).padStart(8)} µs/task  ${Math.round(1000 / msPerTask)
      .toString()
      .padStart(8)} tasks/s  x${(msPerTask / baseline).toFixed(1)} of baseline`,
  );
console.log(`runner proofs: ${tasks} tasks, 2 messages each (reservation + execution result)`);
row('baseline: statements, no crypto', baseline);
row('sign (runner, node:crypto)', sign);
row('verify (run, @noble/curves)', verify);
row('sign + verify', sign + verify);
