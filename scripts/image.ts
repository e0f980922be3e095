/**
 * `scripts/image base|build [--tag T]`: Runfleet's image built with Podman here
 * (test/helpers/image.ts). `base` makes the stand-in for `node:20-bookworm-slim` (Debian bookworm
 * by debootstrap, Node's release binary and npm from the npm registry) and prints its reference;
 * `build` builds the Dockerfile on it and prints the tag and the size. Where the public base can be
 * pulled, `docker build -t runfleet .` needs none of this.
 */
import path from 'node:path';
import { RunfleetError } from '../src/errors';
import { buildRunfleetImage, ensureNodeBaseImage, RUNFLEET_IMAGE } from '../test/helpers/image';

const USAGE = 'usage: scripts/image base | build [--tag <image>]';

async function main(argv: string[]): Promise<void> {
  const projectRoot = path.resolve(__dirname, '..');
  const log = (line: string): void => void process.stderr.write(`${line}\n`);
  const [command, ...rest] = argv;
  let tag = RUNFLEET_IMAGE;
  if (rest.length > 0) {
    if (rest[0] !== '--tag' || rest.length !== 2 || !rest[1]) throw new RunfleetError('InvalidArgument', USAGE);
    tag = rest[1];
  }
  switch (command) {
    case 'base':
      if (rest.length > 0) throw new RunfleetError('InvalidArgument', USAGE);
      console.log(ensureNodeBaseImage({ projectRoot, log }));
      return;
    case 'build': {
      const built = await buildRunfleetImage({ projectRoot, tag, log });
      console.log(`${built.tag} ${Math.round(built.sizeBytes / 1e6)} MB`);
      return;
    }
    default:
      throw new RunfleetError('InvalidArgument', USAGE);
  }
}

main(process.argv.slice(2)).catch((err: unknown) => {
  if (err instanceof RunfleetError) console.error(err.message);
  else console.error(err);
  process.exitCode = 1;
});
