/**
 * A runner's name and labels as an operator types them (`runner create NAME --label k=v`),
 * checked before anything is sent: one clear error naming the problem. Pure, loaded by the CLI
 * without the Temporal client.
 */
import { RunfleetError } from '../errors';
import { LABEL_KEY_RE, LABEL_VALUE_RE } from '../labels';

/** Runner and pool names: what a Temporal task queue and a host name both take. */
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;

export function nameProblem(name: unknown): string | null {
  if (typeof name === 'string' && NAME_RE.test(name)) return null;
  return `runner name ${JSON.stringify(name)} must be 1-63 letters, digits, "_", "." or "-", starting with a letter or digit`;
}

export function poolProblem(pool: unknown): string | null {
  if (typeof pool === 'string' && NAME_RE.test(pool)) return null;
  return `pool ${JSON.stringify(pool)} must be 1-63 letters, digits, "_", "." or "-", starting with a letter or digit`;
}

export function labelProblem(key: string, value: string): string | null {
  if (!LABEL_KEY_RE.test(key))
    return `label key ${JSON.stringify(key)} must be 1-63 letters, digits, "_", ".", "/" or "-"`;
  if (!LABEL_VALUE_RE.test(value))
    return `label value ${JSON.stringify(value)} (of ${key}) must be at most 63 letters, digits, "_", ".", "/", ":" or "-"`;
  return null;
}

/** InvalidArgument when `name` cannot be a runner name (checked before connecting). */
export function checkRunnerName(name: string): void {
  const bad = nameProblem(name);
  if (bad) throw new RunfleetError('InvalidArgument', bad);
}

/** `k=v` pairs from `--label` flags; InvalidArgument naming the flag. */
export function parseLabels(pairs: readonly string[]): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new RunfleetError('InvalidArgument', `--label "${pair}": expected key=value`);
    const key = pair.slice(0, eq);
    const value = pair.slice(eq + 1);
    const bad = labelProblem(key, value);
    if (bad) throw new RunfleetError('InvalidArgument', `--label: ${bad}`);
    labels[key] = value;
  }
  return labels;
}
