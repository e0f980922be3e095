import { describe, expect, it } from 'vitest';
import { checkFleetSpec, validateFleetSpec } from '../../src/fleet/validate';
import { RunfleetError } from '../../src/errors';

const valid = () => ({
  name: 'ci',
  launchTemplate: { ami: 'ami-0abc', userData: 'runfleet runner serve --token {{token}}', securityGroups: ['sg-1'] },
  resourceClasses: [{ name: 'small', instanceType: 't3.large', minIdle: 1, maxInstances: 5 }],
  subnets: ['subnet-1'],
});

const paths = (input: unknown) => {
  const r = checkFleetSpec(input);
  if (r.ok) throw new Error('expected problems');
  return r.problems.map((p) => p.path);
};

describe('fleet spec', () => {
  it('fills in defaults, durations in milliseconds', () => {
    const spec = validateFleetSpec({ ...valid(), maxIdleTime: '10m', token: { lifetime: 7200 } });
    expect(spec.maxIdleTime).toBe(600_000);
    expect(spec.maxLifetime).toBe(6 * 3_600_000);
    expect(spec.token).toEqual({ lifetime: 7_200_000, rotation: 30 * 60_000 });
    expect(spec.tags).toEqual({});
    expect(spec.resourceClasses[0]?.minIdle).toBe(1);
  });

  it('names every invalid field at once, classes by name', () => {
    const problems = paths({
      name: 'bad name',
      launchTemplate: { ami: 'x', userData: 'echo', securityGroups: [], extra: true },
      resourceClasses: [
        { name: 'small', instanceType: 'big', minIdle: 9, maxInstances: 2 },
        { name: 'small', instanceType: 't3.large', maxInstances: 1.5 },
      ],
      maxLifetime: 'forever',
      subnets: ['vpc-1'],
      tags: { 'runfleet:x': 'y' },
      token: { lifetime: '10m', rotation: '1h' },
      unknown: 1,
    });
    expect(problems).toEqual(
      expect.arrayContaining([
        'name',
        'launchTemplate.ami',
        'launchTemplate.userData',
        'launchTemplate.securityGroups',
        'launchTemplate',
        'resourceClasses.small.instanceType',
        'resourceClasses.small.minIdle',
        'resourceClasses.small.maxInstances',
        'resourceClasses.small.name',
        'maxLifetime',
        'subnets[0]',
        'tags.runfleet:x',
        'token.rotation',
        '(fleet)',
      ]),
    );
  });

  it('checks rules across fields even when everything else is valid', () => {
    expect(paths({ ...valid(), maxIdleTime: '7h' })).toEqual(['maxIdleTime']);
    expect(
      paths({ ...valid(), resourceClasses: [{ name: 'a', instanceType: 't3.large', minIdle: 6, maxInstances: 5 }] }),
    ).toEqual(['resourceClasses.a.minIdle']);
    expect(
      paths({
        ...valid(),
        resourceClasses: Array.from({ length: 6 }, (_, i) => ({
          name: `c${i}`,
          instanceType: 't3.large',
          maxInstances: 1000,
        })),
      }),
    ).toEqual(['resourceClasses']);
  });

  it('checks the runners settings like `runner settings` does, naming the bad key', () => {
    expect(validateFleetSpec({ ...valid(), runnerSettings: { slots: 8 } }).runnerSettings).toEqual({ slots: 8 });
    expect(paths({ ...valid(), runnerSettings: { slots: 0 } })).toEqual(['runnerSettings.slots']);
    expect(paths({ ...valid(), runnerSettings: { cores: 2 } })).toEqual(['runnerSettings']);
    expect(paths({ ...valid(), runnerSettings: { heartbeatMs: 20_000, watchdogMs: 30_000 } })).toEqual([
      'runnerSettings.heartbeatMs',
    ]);
  });

  it('throws InvalidConfig (a user error) listing the problems', () => {
    const err = (() => {
      try {
        validateFleetSpec({});
      } catch (e) {
        return e;
      }
    })() as RunfleetError;
    expect(err).toBeInstanceOf(RunfleetError);
    expect(err.code).toBe('InvalidConfig');
    expect(err.isUserError).toBe(true);
    expect(err.message).toMatch(/^invalid fleet spec:\n  name: is required/);
  });
});
