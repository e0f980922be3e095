/**
 * A real Prometheus for the metrics tests (`scripts/ensure-prometheus.ts`): Debian's `prometheus`
 * package (2.42), fetched with `apt-get download` and unpacked (`dpkg -x`) into
 * `<projectRoot>/.tools/prometheus` without installing it (no service, no system user), then run
 * as a child process with a scrape configuration of the test's own.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { RunfleetError } from '../../src/errors';
import { freePort } from '../../src/server/ports';
import { sleep } from '../../src/sleep';
import { unpackDebianPackage } from './debian';

export interface EnsurePrometheusOptions {
  projectRoot: string;
  log?: (line: string) => void;
}

/** The `prometheus` executable, unpacked from Debian's package into .tools when missing. */
export function ensurePrometheus(opts: EnsurePrometheusOptions): string {
  return unpackDebianPackage({ ...opts, pkg: 'prometheus', dir: 'prometheus', binary: 'usr/bin/prometheus' });
}

function unavailable(message: string): RunfleetError {
  return new RunfleetError('ComponentUnavailable', `prometheus: ${message}`);
}

export interface PrometheusServer {
  url: string;
  /** The instant query's result vector (`/api/v1/query`). */
  query(promql: string): Promise<{ metric: Record<string, string>; value: [number, string] }[]>;
  /** The scrape targets and their health (`/api/v1/targets`). */
  targets(): Promise<{ scrapeUrl: string; health: string; lastError: string }[]>;
  output(): string;
  stop(): Promise<void>;
}

/** Starts Prometheus scraping `targets` (host:port) every `scrapeIntervalS` seconds. */
export async function startPrometheus(
  opts: EnsurePrometheusOptions & { targets: string[]; scrapeIntervalS?: number },
): Promise<PrometheusServer> {
  const binary = ensurePrometheus(opts);
  const dir = mkdtempSync(path.join(tmpdir(), 'runfleet-prometheus-run-'));
  const interval = `${opts.scrapeIntervalS ?? 1}s`;
  writeFileSync(
    path.join(dir, 'prometheus.yml'),
    [
      'global:',
      `  scrape_interval: ${interval}`,
      `  scrape_timeout: ${interval}`,
      'scrape_configs:',
      '  - job_name: runfleet',
      '    static_configs:',
      `      - targets: [${opts.targets.map((t) => JSON.stringify(t)).join(', ')}]`,
      '',
    ].join('\n'),
  );
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child: ChildProcess = spawn(
    binary,
    [
      `--config.file=${path.join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${path.join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  const keep = (d: Buffer) => (output = (output + d.toString()).slice(-8000));
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  let exited: number | null | undefined;
  child.once('exit', (code) => (exited = code));
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (exited !== undefined) throw unavailable(`exited (${exited}) before answering:\n${output}`);
    try {
      if ((await fetch(`${url}/-/ready`)).ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw unavailable(`did not answer on ${url} in 30 s:\n${output}`);
    }
    await sleep(200);
  }
  const api = async <T>(p: string): Promise<T> => {
    const r = await fetch(`${url}${p}`);
    const body = (await r.json()) as { status: string; data: T; error?: string };
    if (body.status !== 'success') throw new Error(`prometheus ${p}: ${body.error ?? r.status}`);
    return body.data;
  };
  return {
    url,
    query: async (promql) =>
      (
        await api<{ result: { metric: Record<string, string>; value: [number, string] }[] }>(
          `/api/v1/query?query=${encodeURIComponent(promql)}`,
        )
      ).result,
    targets: async () =>
      (await api<{ activeTargets: { scrapeUrl: string; health: string; lastError: string }[] }>('/api/v1/targets'))
        .activeTargets,
    output: () => output,
    async stop() {
      if (exited === undefined) {
        const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
        await gone;
        clearTimeout(timer);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
