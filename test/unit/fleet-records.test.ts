import { describe, expect, it } from 'vitest';
import {
  addLaunched,
  addToken,
  claim,
  closeGone,
  confirmTerminated,
  currentToken,
  expiredRecords,
  markRunning,
  markTerminated,
  registered,
  release,
  renew,
  runnerGone,
  tokenDue,
} from '../../src/fleet/records';
import { validateFleetSpec } from '../../src/fleet/validate';
import { tokenHash } from '../../src/fleet/token';
import { initialFleetState, type FleetState } from '../../src/fleet/types';

const spec = validateFleetSpec({
  name: 'ci',
  launchTemplate: { ami: 'ami-1', userData: 'runfleet runner serve {{token}}', securityGroups: ['sg-1'] },
  resourceClasses: [{ name: 'small', instanceType: 't3.large', maxInstances: 5 }],
  subnets: ['subnet-1'],
  maxLifetime: '1h',
  maxIdleTime: '10m',
  registrationTimeout: '5m',
  token: { lifetime: '1h', rotation: '30m' },
});

const T0 = Date.parse('2026-01-01T00:00:00.000Z');
const at = (minutes: number) => new Date(T0 + minutes * 60_000).toISOString();

/** A fleet with a token and one registered instance, idle since minute 1. */
function fleet(): FleetState {
  const s = initialFleetState('ci');
  addToken(s, { id: 't1', hash: tokenHash('secret-1'), mintedAt: at(0), expiresAt: at(60) }, at(0));
  addLaunched(s, spec, { instanceId: 'i-1', resourceClass: 'small', launchedAt: at(0) });
  const r = registered(s, spec, { runner: 'r1', tokenId: 't1', instanceId: 'i-1' }, at(1));
  expect(r.ok).toBe(true);
  return s;
}

describe('instance records', () => {
  it('walks created -> idle -> claimed -> running -> idle with thresholds', () => {
    const s = fleet();
    expect(s.records['i-1']).toMatchObject({ state: 'idle', runner: 'r1', threshold: at(11) });
    expect(claim(s, spec, 'small', 'job', 20 * 60_000, at(2))).toMatchObject({
      ok: true,
      value: { state: 'claimed', threshold: at(22) },
    });
    expect(markRunning(s, 'i-1', 'job', 30 * 60_000, at(3))).toMatchObject({
      ok: true,
      value: { state: 'running', threshold: at(33) },
    });
    expect(renew(s, 'i-1', 'other', 60_000, at(4)).ok).toBe(false);
    expect(release(s, spec, 'i-1', 'job', at(5))).toMatchObject({
      ok: true,
      value: { state: 'idle', threshold: at(15), claimedBy: null },
    });
  });

  it('an idle threshold never passes the lifetime; a release past it marks terminated', () => {
    const s = fleet();
    claim(s, spec, 'small', 'job', 2 * 3_600_000, at(55));
    expect(release(s, spec, 'i-1', 'job', at(61))).toMatchObject({ ok: true, value: { state: 'terminated' } });
    const s2 = fleet();
    claim(s2, spec, 'small', 'job', 60_000, at(55));
    expect(release(s2, spec, 'i-1', 'job', at(56))).toMatchObject({
      ok: true,
      value: { state: 'idle', threshold: at(60) },
    });
    expect(claim(s2, spec, 'small', 'late', 60_000, at(60)).ok).toBe(false); // past its lifetime
  });

  describe('claim against terminate: exactly one wins in every order', () => {
    // Minute 12: idle past maxIdleTime (threshold 11) but within its lifetime: both may act.
    const now = at(12);
    const orders = [
      ['snapshot', 'claim', 'mark'],
      ['snapshot', 'mark', 'claim'],
      ['claim', 'snapshot', 'mark'],
      ['snapshot', 'renew', 'mark'],
    ] as const;
    for (const order of orders) {
      it(order.join(' -> '), () => {
        const s = fleet();
        let seen: number | undefined;
        let claimed = false;
        let marked = false;
        for (const step of order) {
          if (step === 'snapshot') seen = expiredRecords(s, now).find((e) => e.instanceId === 'i-1')?.version;
          if (step === 'claim') claimed = claim(s, spec, 'small', 'job', 60_000, now).ok;
          if (step === 'renew') {
            claim(s, spec, 'small', 'job', 60_000, at(10)); // claimed before, lease ran out at 11
            seen = expiredRecords(s, now).find((e) => e.instanceId === 'i-1')?.version;
            claimed = renew(s, 'i-1', 'job', 60_000, now).ok;
          }
          if (step === 'mark') marked = seen !== undefined && markTerminated(s, 'i-1', seen, 'expired', now).ok;
        }
        expect(Number(claimed) + Number(marked)).toBe(1);
        expect(s.records['i-1']?.state).toBe(claimed ? 'claimed' : 'terminated');
      });
    }
  });

  it('deletes the record and registration only after confirmation, and only from terminated', () => {
    const s = fleet();
    expect(confirmTerminated(s, 'i-1').ok).toBe(false); // still idle
    const v = expiredRecords(s, at(12))[0]?.version as number;
    expect(markTerminated(s, 'i-1', v, 'idle too long', at(12)).ok).toBe(true);
    expect(s.registrations['r1']).toBeDefined();
    expect(confirmTerminated(s, 'i-1')).toEqual({ ok: true, value: { record: true, registrations: ['r1'] } });
    expect(s.records).toEqual({});
    expect(s.registrations).toEqual({});
  });

  it('closes a gone record only if unchanged since it was seen', () => {
    const s = fleet();
    const v = s.records['i-1']?.version as number;
    claim(s, spec, 'small', 'job', 60_000, at(2));
    expect(closeGone(s, 'i-1', v).ok).toBe(false);
    expect(closeGone(s, 'i-1', v + 1).ok).toBe(true);
    expect(s.registrations).toEqual({});
  });

  it('takes in a registration for its own instances only; rotates and forgets tokens', () => {
    const s = fleet();
    addLaunched(s, spec, { instanceId: 'i-2', resourceClass: 'small', launchedAt: at(0) });
    expect(registered(s, spec, { runner: 'r2', tokenId: 't1', instanceId: 'i-3' }, at(2))).toMatchObject({
      ok: false,
      reason: /not part of fleet/,
    });
    expect(registered(s, spec, { runner: 'other', tokenId: 't1', instanceId: 'i-1' }, at(2))).toMatchObject({
      ok: false,
      reason: /already has runner "r1"/,
    });
    // Told twice (a retried signal): the same answer, no second transition.
    const v = s.records['i-1']?.version;
    expect(registered(s, spec, { runner: 'r1', tokenId: 't1', instanceId: 'i-1' }, at(2)).ok).toBe(true);
    expect(s.records['i-1']?.version).toBe(v);
    expect(registered(s, spec, { runner: 'r2', tokenId: 't1', instanceId: 'i-2' }, at(2)).ok).toBe(true);
    expect(Object.keys(s.registrations).sort()).toEqual(['r1', 'r2']);
    expect(tokenDue(s, spec, at(29))).toBe(false);
    expect(tokenDue(s, spec, at(30))).toBe(true);
    addToken(s, { id: 't2', hash: tokenHash('secret-2'), mintedAt: at(61), expiresAt: at(121) }, at(61));
    expect(s.tokens.map((t) => t.id)).toEqual(['t2']); // the expired one is forgotten
    expect(currentToken(s, at(61))?.id).toBe('t2');
  });

  it('a purged runner marks its live instance terminated, whatever holds it; a terminated one stays as it is', () => {
    const s = fleet();
    claim(s, spec, 'small', 'job', 60 * 60_000, at(2));
    const gone = runnerGone(s, 'i-1', 'its runner was purged by ops: broken', at(3));
    expect(gone).toMatchObject({ ok: true, value: { state: 'terminated', claimedBy: null } });
    expect(s.records['i-1']?.reason).toMatch(/broken/);
    expect(runnerGone(s, 'i-1', 'again', at(4)).ok).toBe(false);
    expect(runnerGone(s, 'i-404', 'unknown', at(4)).ok).toBe(false);
    expect(s.registrations['r1']).toBeDefined(); // artifacts go in phase 3, after EC2 confirms
  });

  it('a created instance whose runner never registers expires at registrationTimeout', () => {
    const s = initialFleetState('ci');
    addLaunched(s, spec, { instanceId: 'i-9', resourceClass: 'small', launchedAt: at(0) });
    expect(expiredRecords(s, at(4))).toEqual([]);
    expect(expiredRecords(s, at(5))).toEqual([{ instanceId: 'i-9', version: 1 }]);
  });
});
