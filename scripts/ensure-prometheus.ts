/**
 * `tsx scripts/ensure-prometheus.ts`: unpacks Debian's Prometheus into .tools/prometheus (the
 * metrics tests scrape Runfleet's processes with it). Progress goes to stderr; stdout gets the
 * binary's path.
 */
import path from 'node:path';
import { RunfleetError } from '../src/errors';
import { ensurePrometheus } from '../test/helpers/prometheus';

try {
  const binary = ensurePrometheus({
    projectRoot: path.resolve(__dirname, '..'),
    log: (line) => process.stderr.write(`${line}\n`),
  });
  process.stdout.write(`${binary}\n`);
} catch (err) {
  if (err instanceof RunfleetError) process.stderr.write(`ensure-prometheus: ${err.message}\n`);
  else console.error(err);
  process.exitCode = 1;
}
