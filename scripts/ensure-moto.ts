/** `tsx scripts/ensure-moto.ts`: installs moto (EC2 API endpoint for tests) into .tools/moto-venv. */
import path from 'node:path';
import { ensureMoto } from '../test/helpers/moto';

const binary = ensureMoto({
  projectRoot: path.resolve(__dirname, '..'),
  log: (line) => process.stderr.write(`${line}\n`),
});
process.stdout.write(`${binary}\n`);
