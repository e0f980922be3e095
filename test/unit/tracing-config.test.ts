/** Where a process's traces go: OpenTelemetry's variables, the config file, and refusals. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config';
import { startTracing } from '../../src/tracing';

const cwd = mkdtempSync(join(tmpdir(), 'runfleet-tracing-config-'));
const load = (env: Record<string, string>, configFile?: string) =>
  loadConfig({ cwd, env, ...(configFile ? { configFile } : {}) });

describe('tracing settings', () => {
  it('are off by default, and then no tracing starts', () => {
    const config = load({});
    expect(config.tracing.endpoint).toBeUndefined();
    expect(startTracing(config, 'test')).toBeNull();
  });

  it("take OpenTelemetry's base endpoint (+ /v1/traces), its traces endpoint first, and the service name", () => {
    expect(load({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318/' }).tracing.endpoint).toBe(
      'http://collector:4318/v1/traces',
    );
    const both = load({
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318',
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'https://traces.example.com/v1/traces',
      OTEL_SERVICE_NAME: 'ci-runners',
    });
    expect(both.tracing).toEqual({ endpoint: 'https://traces.example.com/v1/traces', serviceName: 'ci-runners' });
  });

  it('a config file endpoint wins over the base variable', () => {
    const file = join(cwd, 'config.yaml');
    writeFileSync(file, 'tracing:\n  endpoint: http://from-file:4318/v1/traces\n');
    expect(load({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://base:4318' }, file).tracing.endpoint).toBe(
      'http://from-file:4318/v1/traces',
    );
  });

  it('refuses an endpoint that is not an http(s) URL, naming where it came from', () => {
    expect(() => load({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'file:///etc/passwd' })).toThrow(
      /OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: must be an http\(s\) URL/,
    );
    expect(() => load({ OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318' })).toThrow(
      /OTEL_EXPORTER_OTLP_ENDPOINT: must be an http\(s\) URL/,
    );
  });
});
