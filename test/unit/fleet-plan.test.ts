import { describe, expect, it } from 'vitest';
import { desiredTemplate, planFleet, templateName, type Observed, type ObservedInstance } from '../../src/fleet/plan';
import { addLaunched, addToken } from '../../src/fleet/records';
import { initialFleetState, type FleetState } from '../../src/fleet/types';
import { validateFleetSpec } from '../../src/fleet/validate';

const spec = validateFleetSpec({
  name: 'ci',
  launchTemplate: { ami: 'ami-1', userData: 'runfleet runner serve {{token}}', securityGroups: ['sg-2', 'sg-1'] },
  resourceClasses: [
    { name: 'small', instanceType: 't3.large', minIdle: 2, maxInstances: 3 },
    { name: 'large', instanceType: 'c6i.4xlarge', maxInstances: 3 },
  ],
  subnets: ['subnet-1'],
  orphanGrace: '2m',
});
const NOW = '2026-01-01T01:00:00.000Z';
const ago = (s: number) => new Date(Date.parse(NOW) - s * 1000).toISOString();

function observedTemplates(ami = 'ami-1'): Observed['templates'] {
  return spec.resourceClasses.map((c, i) => {
    const data = { ...desiredTemplate(spec, c), imageId: ami };
    return {
      name: templateName('ci', c.name),
      id: `lt-${i}`,
      defaultVersion: 1,
      latestVersion: 1,
      defaultData: data,
      latestData: data,
    };
  });
}

function applied(): FleetState {
  const s = initialFleetState('ci');
  s.spec = spec;
  s.pools = {
    small: { resourceClass: 'small', taskQueue: 'pool/ci-small' },
    large: { resourceClass: 'large', taskQueue: 'pool/ci-large' },
  };
  addToken(s, { id: 't', hash: 'h', mintedAt: ago(60), expiresAt: ago(-3600) }, ago(60));
  return s;
}

const running = (id: string, launchedSecondsAgo = 600, cls = 'small'): ObservedInstance => ({
  instanceId: id,
  state: 'running',
  resourceClass: cls,
  launchTime: ago(launchedSecondsAgo),
});

describe('planFleet', () => {
  it('plans everything on a new fleet', () => {
    const plan = planFleet(spec, { templates: [], instances: [], observedAt: NOW }, initialFleetState('ci'), NOW);
    expect(plan.items.filter((i) => i.action !== 'nothing').map((i) => `${i.kind}/${i.name}/${i.action}`)).toEqual([
      'launch-template/runfleet-ci-small/create',
      'launch-template/runfleet-ci-large/create',
      'pool/ci-small/create',
      'pool/ci-small/launch',
      'pool/ci-large/create',
      'token/registration token/rotate',
      'parameters/operational parameters/update',
    ]);
  });

  it('shows no change when actual matches desired', () => {
    const s = applied();
    addLaunched(s, spec, { instanceId: 'i-1', resourceClass: 'small', launchedAt: ago(100) });
    addLaunched(s, spec, { instanceId: 'i-2', resourceClass: 'small', launchedAt: ago(100) });
    const plan = planFleet(
      spec,
      { templates: observedTemplates(), instances: [running('i-1', 100), running('i-2', 100)], observedAt: NOW },
      s,
      NOW,
    );
    expect(plan.changes).toBe(0);
  });

  it('a changed AMI is one update per template, naming the field', () => {
    const plan = planFleet(
      spec,
      { templates: observedTemplates('ami-0'), instances: [], observedAt: NOW },
      applied(),
      NOW,
    );
    const updates = plan.items.filter((i) => i.kind === 'launch-template' && i.action === 'update');
    expect(updates).toHaveLength(2);
    expect(updates[0]).toMatchObject({
      changes: [{ field: 'imageId', from: '"ami-0"', to: '"ami-1"' }],
      makeDefault: null,
    });
  });

  it('reuses a matching latest version that is not the default yet (a refresh stopped half way)', () => {
    const t = observedTemplates('ami-0');
    const small = t[0] as Observed['templates'][number];
    t[0] = { ...small, latestVersion: 2, latestData: desiredTemplate(spec, spec.resourceClasses[0] as never) };
    const plan = planFleet(spec, { templates: t, instances: [], observedAt: NOW }, applied(), NOW);
    expect(plan.items[0]).toMatchObject({ action: 'update', makeDefault: 2 });
  });

  it('terminates orphans past the grace, closes records whose instance is gone, keeps young ones', () => {
    const s = applied();
    addLaunched(s, spec, { instanceId: 'i-gone', resourceClass: 'small', launchedAt: ago(600) });
    addLaunched(s, spec, { instanceId: 'i-young', resourceClass: 'small', launchedAt: ago(10) }); // not visible yet
    addLaunched(s, spec, { instanceId: 'i-stopping', resourceClass: 'small', launchedAt: ago(600) });
    const instances = [
      running('i-orphan'),
      running('i-new-orphan', 30),
      { ...running('i-stopping'), state: 'shutting-down' as const },
    ];
    const plan = planFleet(spec, { templates: observedTemplates(), instances, observedAt: NOW }, s, NOW);
    const inst = plan.items.filter((i) => i.kind === 'instance').map((i) => `${i.name}:${i.action}`);
    expect(inst.sort()).toEqual(['i-gone:close', 'i-orphan:terminate', 'i-stopping:close']);
  });

  it('keeps minIdle warm without passing maxInstances, not counting instances on their way out', () => {
    const s = applied();
    addLaunched(s, spec, { instanceId: 'i-1', resourceClass: 'small', launchedAt: ago(3600 * 7) }); // expired (registration)
    addLaunched(s, spec, { instanceId: 'i-2', resourceClass: 'small', launchedAt: ago(60) });
    addLaunched(s, spec, { instanceId: 'i-3', resourceClass: 'small', launchedAt: ago(60), claimedBy: 'job' });
    const plan = planFleet(
      spec,
      { templates: observedTemplates(), instances: [running('i-1'), running('i-2'), running('i-3')], observedAt: NOW },
      s,
      NOW,
    );
    expect(plan.items.find((i) => i.kind === 'instance')).toMatchObject({
      name: 'i-1',
      action: 'terminate',
      phase: 'mark',
    });
    // 1 warm (i-2; i-3 is reserved) of 2 wanted; room: 3 - 2 live = 1.
    expect(plan.items.find((i) => i.kind === 'pool' && i.action === 'launch')).toMatchObject({
      resourceClass: 'small',
      count: 1,
    });
  });

  it('deletes the template of a removed class once it has no instances', () => {
    const extra = {
      name: 'runfleet-ci-old',
      id: 'lt-old',
      defaultVersion: 1,
      latestVersion: 1,
      defaultData: desiredTemplate(spec, spec.resourceClasses[0] as never),
      latestData: desiredTemplate(spec, spec.resourceClasses[0] as never),
    };
    const s = applied();
    const plan = planFleet(
      spec,
      { templates: [...observedTemplates(), extra], instances: [], observedAt: NOW },
      s,
      NOW,
    );
    expect(plan.items.find((i) => i.name === 'runfleet-ci-old')).toMatchObject({ action: 'delete' });
    addLaunched(s, spec, { instanceId: 'i-1', resourceClass: 'old', launchedAt: ago(60) });
    const kept = planFleet(
      spec,
      { templates: [...observedTemplates(), extra], instances: [running('i-1', 60, 'old')], observedAt: NOW },
      s,
      NOW,
    );
    expect(kept.items.find((i) => i.name === 'runfleet-ci-old')).toMatchObject({ action: 'nothing' });
  });
});
