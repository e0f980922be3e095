/**
 * `tsx scripts/build-native.ts`: compiles the process driver's native supervisor
 * (`native/supervise.c`, see src/runner/native-supervisor.ts) into `dist/native/` when it is
 * missing, older than its source or does not answer as this code expects. Without a C compiler
 * it says so and leaves runners on the shell supervisor (exit 0: nothing else depends on it).
 */
import { statSync } from 'node:fs';
import path from 'node:path';
import { buildNativeSupervisor, nativeSupervisorPath, probeNativeSupervisor } from '../src/runner/native-supervisor';

const root = path.resolve(__dirname, '..');
const out = nativeSupervisorPath(root);
const mtime = (file: string): number => {
  try {
    return statSync(file).mtimeMs;
  } catch {
    return -1;
  }
};
const fresh = mtime(out) >= mtime(path.join(root, 'native', 'supervise.c')) && probeNativeSupervisor(out).path !== null;
if (fresh) {
  process.stdout.write(`${out}\n`);
} else {
  const failed = buildNativeSupervisor(root, out);
  const probe = failed ? null : probeNativeSupervisor(out);
  if (failed || !probe?.path) {
    const why = failed ?? (probe && probe.path === null ? probe.why : 'unknown');
    process.stderr.write(`build-native: warning: no native supervisor (${why}); runners use the shell one\n`);
    process.stdout.write('none\n');
  } else {
    process.stdout.write(`${out} (built)\n`);
  }
}
