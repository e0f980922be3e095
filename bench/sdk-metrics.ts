/**
 * The SDK's own metrics, read from the Prometheus endpoint the bench runtime serves
 * (`installBenchRuntime({ metricsAddress })`): where a workflow task's time goes on the worker's
 * side (its execution, its completion call to the server).
 */
import { createServer } from 'node:net';

/** Every sample of one scrape: `name{labels}` -> value. */
export type Samples = Map<string, number>;

/** A free local `host:port` for the SDK's metrics endpoint. */
export async function freeMetricsAddress(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no free port for the SDK metrics');
  return `127.0.0.1:${address.port}`;
}

export async function scrape(address: string): Promise<Samples> {
  const res = await fetch(`http://${address}/metrics`).catch((err: unknown) => {
    throw new Error(`SDK metrics at ${address}: ${String((err as Error).cause ?? err)}`);
  });
  if (!res.ok) throw new Error(`SDK metrics at ${address}: HTTP ${res.status}`);
  const samples: Samples = new Map();
  for (const line of (await res.text()).split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const cut = line.lastIndexOf(' ');
    const value = Number(line.slice(cut + 1));
    if (Number.isFinite(value)) samples.set(line.slice(0, cut), value);
  }
  return samples;
}

/**
 * A histogram's mean over a window: the change of its `_sum` and `_count` between two scrapes,
 * summed over the series named `metric` whose labels hold every `labels` pair.
 */
export function histogramMean(
  before: Samples,
  after: Samples,
  metric: string,
  labels: Record<string, string> = {},
): { count: number; mean: number } {
  const total = (samples: Samples, suffix: string) => {
    let sum = 0;
    for (const [key, value] of samples) {
      const brace = key.indexOf('{');
      const name = brace < 0 ? key : key.slice(0, brace);
      if (name !== `${metric}${suffix}`) continue;
      if (Object.entries(labels).every(([k, v]) => key.includes(`${k}="${v}"`))) sum += value;
    }
    return sum;
  };
  const count = total(after, '_count') - total(before, '_count');
  const sum = total(after, '_sum') - total(before, '_sum');
  return { count, mean: count > 0 ? Math.round((sum / count) * 10) / 10 : NaN };
}
