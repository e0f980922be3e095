/**
 * docker-compose.yml cannot be started here (its images come from a registry this machine cannot
 * reach), so its structure is checked: pinned images, the set-up order (schema, service,
 * namespace, search attributes, keys), keys in every worker and runner, /readyz health checks, a
 * scalable runner. scripts/cluster runs the same sequence on the real server's processes.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { SEARCH_ATTRIBUTES } from '../../src/search-attributes';

interface Service {
  volumes?: string[];
  user?: string;
  image?: string;
  build?: unknown;
  command?: string | string[];
  entrypoint?: string | string[];
  environment?: Record<string, string | number | boolean> | string[];
  depends_on?: Record<string, { condition: string }> | string[];
  healthcheck?: { test: string | string[] };
  ports?: unknown[];
  container_name?: string;
  init?: boolean;
}

const root = path.resolve(__dirname, '..', '..');
const compose = parse(readFileSync(path.join(root, 'docker-compose.yml'), 'utf8'), { merge: true }) as {
  services: Record<string, Service>;
};
const services = compose.services;

function service(name: string): Service {
  const s = services[name];
  if (s === undefined) throw new Error(`docker-compose.yml has no service ${name}`);
  return s;
}

function env(s: Service): Record<string, string> {
  if (Array.isArray(s.environment)) {
    return Object.fromEntries(s.environment.map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]));
  }
  return Object.fromEntries(Object.entries(s.environment ?? {}).map(([k, v]) => [k, String(v)]));
}

function commandText(s: Service): string {
  const parts = [s.entrypoint ?? [], s.command ?? []].flat();
  // Compose turns `$$` into a literal `$`.
  return parts.join(' ').replace(/\$\$/g, '$');
}

describe('docker-compose.yml', () => {
  it('has the whole system', () => {
    for (const name of [
      'postgresql',
      'temporal-schema',
      'temporal',
      'temporal-namespace',
      'runfleet-keys',
      'temporal-ui',
      'worker',
      'runner',
    ]) {
      expect(services, name).toHaveProperty(name);
    }
  });

  it('pins every image to a version; Temporal is temporalio/server with admin-tools, not auto-setup', () => {
    for (const [name, s] of Object.entries(services)) {
      if (s.image === undefined) continue;
      expect(s.image, name).toMatch(/^[^:]+:(?!latest$)[\w.-]+$/);
      expect(s.image, name).not.toMatch(/auto-setup/);
    }
    expect(service('postgresql').image).toBe('postgres:16');
    expect(service('temporal').image).toBe('temporalio/server:1.29.1');
    expect(service('temporal-schema').image).toBe('temporalio/admin-tools:1.29.1');
    expect(service('temporal-namespace').image).toBe('temporalio/admin-tools:1.29.1');
    expect(service('temporal-ui').image).toBe('temporalio/ui:2.42.1');
  });

  it('sets the schema up once PostgreSQL is healthy, then starts Temporal on it', () => {
    const pg = env(service('postgresql'));
    const schema = service('temporal-schema');
    expect(schema.depends_on).toMatchObject({ postgresql: { condition: 'service_healthy' } });
    const steps = commandText(schema);
    for (const step of ['create-database', 'setup-schema -v 0.0', 'update-schema']) expect(steps).toContain(step);
    expect(steps).toContain('temporal:temporal temporal_visibility:visibility');
    expect(env(schema)['SQL_PASSWORD']).toBe(pg['POSTGRES_PASSWORD']);
    const temporal = service('temporal');
    const t = env(temporal);
    expect(t['DB']).toBe('postgres12');
    expect(t['POSTGRES_SEEDS']).toBe('postgresql');
    expect(t['POSTGRES_USER']).toBe(pg['POSTGRES_USER']);
    expect(t['POSTGRES_PWD']).toBe(pg['POSTGRES_PASSWORD']);
    expect(temporal.depends_on).toMatchObject({ 'temporal-schema': { condition: 'service_completed_successfully' } });
    expect(service('postgresql').healthcheck).toBeDefined();
  });

  it('points the Web UI at Temporal on port 8080', () => {
    const ui = service('temporal-ui');
    expect(env(ui)['TEMPORAL_ADDRESS']).toBe('temporal:7233');
    expect(ui.ports?.map(String)).toContain('8080:8080');
  });

  it('registers every search attribute of SEARCH_ATTRIBUTES with its type, once the namespace answers', () => {
    const setup = commandText(service('temporal-namespace'));
    expect(setup).toContain('temporal operator namespace create');
    // The namespace reads as "not found" for a while after it is created: wait before registering.
    expect(setup).toMatch(/until existing="\$\(temporal operator search-attribute list[^;]*; do/);
    expect(setup.indexOf('until existing=')).toBeLessThan(setup.indexOf('search-attribute create'));
    expect(setup).toContain('temporal operator search-attribute create');
    for (const [name, type] of Object.entries(SEARCH_ATTRIBUTES)) {
      expect(setup, name).toContain(`${name}=${type}`);
    }
  });

  it('makes the data keys and the operator key once, and gives them to every worker and runner', () => {
    const keys = service('runfleet-keys');
    expect(commandText(keys)).toContain(
      '[ -f /keys/runfleet.keys ] || node bin/runfleet keys create --file /keys/runfleet.keys',
    );
    expect(commandText(keys)).toContain('node bin/runfleet operator-key create --file /keys/operator.key');
    for (const [name, s] of Object.entries(services)) {
      expect(env(s)['RUNFLEET_ALLOW_PLAINTEXT'], `${name} runs in clear`).toBeUndefined();
    }
    const worker = service('worker');
    expect(env(worker)['RUNFLEET_KEY_FILE']).toBe('/keys/runfleet.keys');
    // A runner gets the data keys sealed from the fleet when it registers, not from the file.
    expect(env(service('runner'))['RUNFLEET_KEY_FILE']).toBe('/nonexistent/runfleet.keys');
    for (const name of ['worker', 'runner']) {
      expect(JSON.stringify(services[name]), name).toContain('runfleet-keys:/keys:ro');
      expect(env(service(name))['RUNFLEET_OPERATOR_KEY_FILE'], name).toBe('/keys/operator.key');
    }
  });

  it('runs the control worker and the runners from the repository image, after the set-up', () => {
    for (const name of ['worker', 'runner']) {
      const s = service(name);
      expect(s.build, name).toBe('.');
      expect(env(s)['TEMPORAL_ADDRESS'], name).toBe('temporal:7233');
      expect(s.depends_on, name).toMatchObject({
        'temporal-namespace': { condition: 'service_completed_successfully' },
        'runfleet-keys': { condition: 'service_completed_successfully' },
      });
      // Health checks on the process's own /readyz.
      expect(JSON.stringify(s.healthcheck?.test), name).toContain('127.0.0.1:8081/readyz');
      // Each word a string: an unquoted `a ? 0: 1` in YAML is a mapping, not the script it reads as.
      for (const word of s.healthcheck?.test ?? [])
        expect(typeof word, `${name}: ${JSON.stringify(word)}`).toBe('string');
    }
    expect(commandText(service('worker'))).toBe('node bin/runfleet worker --health-port 8081');
    expect(commandText(service('runner'))).toMatch(
      /exec node bin\/runfleet runner serve --name "\$\(hostname\)" --health-port 8081/,
    );
    // A new container registers itself (temporary: purged once gone); a restarted one reconnects.
    expect(commandText(service('runner'))).toMatch(/runner create "\$\(hostname\)" --pool default --temporary --json/);
  });

  it('lets the runner scale with --scale runner=N', () => {
    const runner = service('runner');
    expect(runner.container_name).toBeUndefined();
    // Published host ports would collide between replicas; an unpublished container port is fine.
    for (const port of runner.ports ?? []) expect(String(port)).not.toContain(':');
    expect(runner.init).toBe(true);
  });

  it('builds from a Dockerfile on node 20', () => {
    const dockerfile = readFileSync(path.join(root, 'Dockerfile'), 'utf8');
    // The public image unless a build names a stand-in (scripts/image on a machine that cannot pull).
    expect(dockerfile).toMatch(/^ARG NODE_IMAGE=node:20-bookworm-slim$/m);
    expect(dockerfile.match(/^FROM .*$/gm)).toEqual(['FROM ${NODE_IMAGE} AS build', 'FROM ${NODE_IMAGE}']);
    expect(dockerfile).toMatch(/RUN npm (ci|install)\b/);
  });
});
