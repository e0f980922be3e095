/**
 * Issue 10, item 7: a fleet registration token admits exactly one instance. Attacked as a hostile
 * party would, against moto and the real dev server: someone who read one pending instance's
 * user data (or that instance itself) tries its token on another pending instance's runner, with
 * a real `runfleet runner serve` and with the registry's `register` update directly. Each attempt
 * is printed with what happened.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RunfleetError } from '../../src/errors';
import { startFleetTestbed, type FleetTestbed } from '../helpers/fleet-testbed';
import { workflowBundle } from '../helpers/harness';
import { killAll, startRunnerProcess } from '../helpers/processes';
import { temporalAddress } from '../helpers/temporal';
import { until } from '../helpers/until';

let bed: FleetTestbed;
beforeAll(async () => {
  bed = await startFleetTestbed({
    projectRoot: path.resolve(__dirname, '..', '..'),
    temporalAddress: temporalAddress(),
    workflowBundle: await workflowBundle(),
  });
  await bed.startWorker();
});
afterAll(async () => {
  await killAll();
  await bed?.stop();
});

const short = (token: string) => `${token.slice(0, 14)}…`;

/** What a registration attempt came to, for the log and the assertions. */
async function attempt(what: string, fn: () => Promise<unknown>): Promise<RunfleetError | 'registered'> {
  const outcome = await fn().then(
    () => 'registered' as const,
    (err: unknown) => err,
  );
  const said =
    outcome === 'registered'
      ? 'registered'
      : outcome instanceof RunfleetError
        ? `refused: ${outcome.code}: ${outcome.message}`
        : `failed: ${String(outcome)}`;
  console.log(`tried: ${what}\n  -> ${said}`);
  if (outcome !== 'registered' && !(outcome instanceof RunfleetError)) throw outcome;
  return outcome;
}

describe('a fleet registration token', () => {
  it("admits its own instance only: a second instance using the first's token is refused, and both still register", async () => {
    const name = bed.uniqueFleet('tok');
    await bed.fleet.apply(
      bed.spec(name, {
        // Two instances launched together, in one refresh with one fleet token: the case that leaked.
        resourceClasses: [{ name: 'small', instanceType: 't3.small', minIdle: 2, maxInstances: 2 }],
        registrationTimeout: '1h',
      }),
    );
    const status = await bed.fleet.status(name);
    expect(status.tokens).toHaveLength(1);
    const [a, b] = status.records.map((r) => r.instanceId) as [string, string];
    const tokenA = await bed.userDataToken(a);
    const tokenB = await bed.userDataToken(b);
    console.log(`fleet ${name}: instances ${a} and ${b}, launched with fleet token ${status.tokens[0]?.id}`);
    console.log(`  user data of ${a}: --token ${short(tokenA)}; of ${b}: --token ${short(tokenB)}`);
    expect(tokenA).not.toBe(tokenB);

    // 1. A real runner on b, started with the token read off a's user data.
    const dir = mkdtempSync(path.join(tmpdir(), 'rf-fleet-token-'));
    const impostor = startRunnerProcess({
      address: temporalAddress(),
      name: b,
      pool: `${name}-small`,
      dataDir: path.join(dir, 'state'),
      token: tokenA,
    });
    const seen = await until(
      'the impostor refused',
      () => {
        const out = impostor.output();
        return /token rejected/.test(out) && out;
      },
      { timeoutMs: 30_000, everyMs: 100, detail: () => impostor.output() },
    );
    impostor.kill('SIGKILL');
    await impostor.exited;
    const line = /token rejected[^\n]*/.exec(seen)?.[0];
    console.log(`tried: runfleet runner serve --name ${b} --token <${a}'s token>\n  -> runner said: ${line}`);
    expect(line).toMatch(/token rejected: unknown token/);

    // 2. The registry's register update for b's runner, as any client could send it.
    const direct = await attempt(`register runner/${b} with ${a}'s token`, () => bed.registerInstance(name, b, tokenA));
    expect(direct).toBeInstanceOf(RunfleetError);
    expect((direct as RunfleetError).code).toBe('TokenRejected');
    expect((direct as RunfleetError).message).toMatch(/unknown token/);

    // Nothing half-registered: b's runner has no identity and its token is unspent; the fleet
    // still has b waiting, with no runner; a's token is unspent too.
    const runnerB = await bed.registry.get(b);
    expect(runnerB.identity).toBeNull();
    expect(runnerB.token).toMatchObject({ used: false, revoked: false });
    expect((await bed.registry.get(a)).token).toMatchObject({ used: false });
    let s = await bed.fleet.status(name);
    expect(s.records.find((r) => r.instanceId === b)).toMatchObject({ state: 'created', runner: null });
    expect(s.registrations).toEqual({});
    console.log(
      `  runner/${b}: identity ${runnerB.identity}, token used: ${runnerB.token?.used}; fleet: still created`,
    );

    // 3. The first instance still registers with its own token, once.
    expect(await attempt(`register runner/${a} with its own token`, () => bed.registerInstance(name, a))).toBe(
      'registered',
    );
    const again = await attempt(`register runner/${a} with its own token again`, () =>
      bed.registerInstance(name, a, tokenA),
    );
    expect((again as RunfleetError).code).toBe('TokenRejected');
    expect((again as RunfleetError).message).toMatch(/already used/);
    // Spent or not, a's token never fits b.
    const afterUse = await attempt(`register runner/${b} with ${a}'s spent token`, () =>
      bed.registerInstance(name, b, tokenA),
    );
    expect((afterUse as RunfleetError).code).toBe('TokenRejected');

    // 4. And the second, with the token of its own user data: the refusals left nothing behind.
    expect(await attempt(`register runner/${b} with its own token`, () => bed.registerInstance(name, b))).toBe(
      'registered',
    );
    s = await bed.fleet.status(name);
    expect(s.records.map((r) => [r.instanceId, r.state, r.runner]).sort()).toEqual(
      [
        [a, 'idle', a],
        [b, 'idle', b],
      ].sort(),
    );
    // Each registration names the instance's own token, not the fleet's.
    const ids = Object.values(s.registrations).map((r) => r.tokenId);
    expect(new Set(ids).size).toBe(2);
    expect(ids).not.toContain(s.tokens[0]?.id);
  });

  it('of one launch fits no instance of another launch in the same token window', async () => {
    const name = bed.uniqueFleet('tokp');
    await bed.fleet.apply(
      bed.spec(name, {
        resourceClasses: [{ name: 'small', instanceType: 't3.small', minIdle: 0, maxInstances: 2 }],
        registrationTimeout: '1h',
      }),
    );
    // Two provisions, nothing idle: each launches an instance of its own (reserved for it) and
    // waits for its runner. One fleet token, two launches.
    const jobs = ['job-1', 'job-2'].map((requestId) =>
      bed.fleet.provision(name, { resourceClass: 'small', requestId, waitMs: 60_000 }),
    );
    let held: Record<string, string> = {};
    await until(
      'an instance launched for each provision',
      async () => {
        const s = await bed.fleet.status(name);
        held = Object.fromEntries(s.records.filter((r) => r.claimedBy).map((r) => [r.claimedBy, r.instanceId]));
        return Object.keys(held).length >= 2;
      },
      { timeoutMs: 30_000, everyMs: 100, detail: () => `held: ${JSON.stringify(held)}` },
    );
    const [one, two] = [held['job-1'], held['job-2']] as [string, string];
    expect(one).toBeDefined();
    expect(two).toBeDefined();
    expect((await bed.fleet.status(name)).tokens).toHaveLength(1);
    const tokenOne = await bed.userDataToken(one);
    const r = await attempt(`register runner/${two} (launch 2) with ${one}'s token (launch 1)`, () =>
      bed.registerInstance(name, two, tokenOne),
    );
    expect((r as RunfleetError).code).toBe('TokenRejected');
    for (const id of [two, one])
      expect(await attempt(`register runner/${id} with its own token`, () => bed.registerInstance(name, id))).toBe(
        'registered',
      );
    const [got1, got2] = await Promise.all(jobs);
    expect([got1?.instanceId, got2?.instanceId]).toEqual([one, two]);
  });
});
