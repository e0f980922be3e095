/**
 * docker-compose.yml cannot be started here (no container engine), so its structure is checked:
 * pinned images, the PostgreSQL wiring, the Runfleet commands, a scalable runner, and every
 * search attribute of src/ids.ts registered.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { SEARCH_ATTRIBUTES } from '../../src/ids';

interface Service {
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
    for (const name of ['postgresql', 'temporal', 'runfleet-setup', 'temporal-ui', 'worker', 'runner']) {
      expect(services, name).toHaveProperty(name);
    }
  });

  it('pins every image to a version', () => {
    for (const [name, s] of Object.entries(services)) {
      if (s.image === undefined) continue;
      expect(s.image, name).toMatch(/^[^:]+:(?!latest$)[\w.-]+$/);
    }
    expect(service('postgresql').image).toBe('postgres:16');
    expect(service('temporal').image).toBe('temporalio/auto-setup:1.29.1');
    expect(service('temporal-ui').image).toBe('temporalio/ui:2.42.1');
  });

  it('runs Temporal on the PostgreSQL service, once it is healthy', () => {
    const postgres = service('postgresql');
    const temporal = service('temporal');
    const pg = env(postgres);
    const t = env(temporal);
    expect(t['DB']).toBe('postgres12');
    expect(t['POSTGRES_SEEDS']).toBe('postgresql');
    expect(t['DB_PORT']).toBe('5432');
    expect(t['POSTGRES_USER']).toBe(pg['POSTGRES_USER']);
    expect(t['POSTGRES_PWD']).toBe(pg['POSTGRES_PASSWORD']);
    expect(temporal.depends_on).toMatchObject({ postgresql: { condition: 'service_healthy' } });
    expect(postgres.healthcheck).toBeDefined();
    expect(temporal.healthcheck).toBeDefined();
  });

  it('points the Web UI at Temporal on port 8080', () => {
    const ui = service('temporal-ui');
    expect(env(ui)['TEMPORAL_ADDRESS']).toBe('temporal:7233');
    expect(ui.ports?.map(String)).toContain('8080:8080');
  });

  it('registers every search attribute of SEARCH_ATTRIBUTES with its type', () => {
    const setup = commandText(service('runfleet-setup'));
    expect(setup).toContain('temporal operator search-attribute create');
    for (const [name, type] of Object.entries(SEARCH_ATTRIBUTES)) {
      expect(setup, name).toContain(`${name}=${type}`);
    }
    expect(service('runfleet-setup').depends_on).toMatchObject({ temporal: { condition: 'service_healthy' } });
  });

  it('runs the control worker and the runners from the repository image against Temporal', () => {
    for (const name of ['worker', 'runner']) {
      const s = service(name);
      expect(s.build, name).toBe('.');
      expect(env(s)['TEMPORAL_ADDRESS'], name).toBe('temporal:7233');
      expect(s.depends_on, name).toMatchObject({
        temporal: { condition: 'service_healthy' },
        'runfleet-setup': { condition: 'service_completed_successfully' },
      });
      expect(s.healthcheck, name).toBeDefined();
    }
    expect(commandText(service('worker'))).toBe('node bin/runfleet worker');
    expect(commandText(service('runner'))).toMatch(
      /exec node bin\/runfleet runner serve --name "\$\(hostname\)" --health-port 8081/,
    );
    // A new container registers itself (temporary: purged once gone); a restarted one reconnects.
    expect(commandText(service('runner'))).toMatch(/runner create "\$\(hostname\)" --pool default --temporary --json/);
    expect(JSON.stringify(service('runner').healthcheck?.test)).toContain('127.0.0.1:8081/readyz');
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
    expect(dockerfile).toMatch(/^FROM node:20-bookworm-slim$/m);
    expect(dockerfile).toMatch(/RUN npm (ci|install)\b/);
  });
});
