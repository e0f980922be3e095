/**
 * A real OpenTelemetry Collector for the tracing test: the collector's own OTLP receiver and debug
 * exporter (go.opentelemetry.io/collector v0.165.0), built with Go from `scripts/otel-collector`
 * into `.tools/bin` on first use and run as a child process. The debug exporter prints every span
 * it receives; `spans()` reads them back from its output.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { RunfleetError } from '../../src/errors';
import { freePort } from '../../src/server/ports';
import { until } from './until';

/** Named by version and build: a change to scripts/otel-collector needs a new name here. */
const BINARY = 'runfleet-otelcol-0.165.0-3';

/** The collector's binary, built when missing (minutes the first time; seconds with Go's cache). */
export function ensureCollector(projectRoot: string, log: (line: string) => void = () => {}): string {
  const binary = path.join(projectRoot, '.tools', 'bin', BINARY);
  if (existsSync(binary)) return binary;
  mkdirSync(path.dirname(binary), { recursive: true });
  log(`building the OpenTelemetry Collector into ${binary}`);
  const r = spawnSync('go', ['build', '-o', binary, '.'], {
    cwd: path.join(projectRoot, 'scripts', 'otel-collector'),
    env: { ...process.env, CGO_ENABLED: '0', GOFLAGS: '-mod=readonly' },
    encoding: 'utf8',
    timeout: 1_800_000,
  });
  if (r.status !== 0) {
    const why = (r.error?.message ?? `${r.stderr}${r.stdout}`).trim().split('\n').slice(-15).join('\n');
    throw new RunfleetError('ComponentUnavailable', `building the OpenTelemetry Collector failed:\n${why}`);
  }
  return binary;
}

export interface ReceivedSpan {
  service: string;
  traceId: string;
  parentId: string;
  id: string;
  name: string;
  kind: string;
}

export interface Collector {
  /** OTLP/HTTP base endpoint, as OTEL_EXPORTER_OTLP_ENDPOINT takes it. */
  endpoint: string;
  spans(): ReceivedSpan[];
  output(): string;
  stop(): Promise<void>;
}

export async function startCollector(projectRoot: string): Promise<Collector> {
  const binary = ensureCollector(projectRoot, (l) => process.stderr.write(`${l}\n`));
  const dir = mkdtempSync(path.join(tmpdir(), 'runfleet-otelcol-'));
  const port = await freePort();
  const config = path.join(dir, 'config.yaml');
  writeFileSync(
    config,
    [
      'receivers:',
      '  otlp:',
      '    protocols:',
      '      http:',
      `        endpoint: 127.0.0.1:${port}`,
      'exporters:',
      '  debug:',
      '    verbosity: detailed',
      'service:',
      '  telemetry:',
      '    metrics:',
      '      level: none',
      '  pipelines:',
      '    traces:',
      '      receivers: [otlp]',
      '      exporters: [debug]',
      '',
    ].join('\n'),
  );
  const logFile = path.join(dir, 'collector.log');
  const out = openSync(logFile, 'a');
  const child: ChildProcess = spawn(binary, ['--config', `file:${config}`], { stdio: ['ignore', out, out] });
  closeSync(out);
  const output = (): string => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : '');
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await until('the collector listening', () => /Everything is ready/.test(output()) || child.exitCode !== null, {
    timeoutMs: 60_000,
    detail: output,
  });
  if (child.exitCode !== null) throw new Error(`the collector exited at start:\n${output()}`);
  return {
    endpoint: `http://127.0.0.1:${port}`,
    spans: () => parseSpans(output()),
    output,
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

/** Spans from the debug exporter's detailed output, each with its resource's service.name. */
export function parseSpans(text: string): ReceivedSpan[] {
  const spans: ReceivedSpan[] = [];
  let service = '';
  let current: Partial<ReceivedSpan> | null = null;
  const field = (line: string, name: string): string | undefined => {
    const m = new RegExp(`^\\s*${name}\\s*:\\s*(.*)$`).exec(line);
    return m ? (m[1] ?? '').trim() : undefined;
  };
  const flush = (): void => {
    if (current?.name !== undefined)
      spans.push({ service, traceId: '', parentId: '', id: '', kind: '', ...current } as ReceivedSpan);
    current = null;
  };
  for (const line of text.split('\n')) {
    const svc = /-> service\.name: Str\((.*)\)/.exec(line);
    // The first line of an export starts with the collector's log prefix (time, level).
    if (/ResourceSpans #\d+/.test(line)) flush();
    if (svc && current === null) service = svc[1] ?? '';
    if (/^\s*Span #\d+/.test(line)) {
      flush();
      current = {};
      continue;
    }
    if (current === null) continue;
    const traceId = field(line, 'Trace ID');
    if (traceId !== undefined) current.traceId = traceId;
    const parentId = field(line, 'Parent ID');
    if (parentId !== undefined) current.parentId = parentId;
    const id = field(line, 'ID');
    if (id !== undefined) current.id = id;
    const name = field(line, 'Name');
    if (name !== undefined) current.name = name;
    const kind = field(line, 'Kind');
    if (kind !== undefined) current.kind = kind;
  }
  flush();
  return spans;
}
