/**
 * Prints the path of the pinned `temporal` CLI, building it with Go if needed (scripts/setup runs
 * this). Progress goes to stderr so `$(npx tsx scripts/ensure-temporal.ts)` captures only the path.
 */
import path from 'node:path';
import { RunfleetError } from '../src/errors';
import { ensureTemporalBinary } from '../src/server/temporal-binary';

async function main(): Promise<void> {
  const projectRoot = path.resolve(__dirname, '..');
  const binary = await ensureTemporalBinary({ projectRoot, log: (line) => console.error(line) });
  console.log(binary);
}

main().catch((err: unknown) => {
  if (err instanceof RunfleetError) console.error(`ensure-temporal: ${err.message}`);
  else console.error(err);
  process.exitCode = 1;
});
