/**
 * Bundles the workflows the way a worker does, and fails on any error. Lint only sees the imports
 * of workflows/ itself; the bundler also sees a forbidden module (fs, a client library...) pulled
 * in three packages deep, which would otherwise fail only when a worker starts.
 *
 * Usage: tsx scripts/bundle-workflows.ts [--out dist/workflow-bundle.js]
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';
import { WORKFLOW_BUNDLE_OPTIONS } from '../src/codec';

async function main(): Promise<void> {
  const root = path.resolve(__dirname, '..');
  const outIndex = process.argv.indexOf('--out');
  const out = path.resolve(root, (outIndex >= 0 ? process.argv[outIndex + 1] : undefined) ?? 'dist/workflow-bundle.js');
  const workflowsPath = path.join(root, 'workflows', 'index.ts');

  const started = Date.now();
  // bundleWorkflowCode rejects on webpack errors and on modules the sandbox disallows.
  // Built with Runfleet's payload converter, as every worker is (key deliveries stay in clear).
  const { code } = await bundleWorkflowCode({
    workflowsPath,
    ...WORKFLOW_BUNDLE_OPTIONS,
    logger: {
      log: () => {},
      trace: () => {},
      debug: () => {},
      info: () => {},
      warn: (message, meta) => console.error(`bundle-workflows: warning: ${message}`, meta ?? ''),
      error: (message, meta) => console.error(`bundle-workflows: ${message}`, meta ?? ''),
    },
  });
  await mkdir(path.dirname(out), { recursive: true });
  await writeFile(out, code);
  console.log(
    `bundle-workflows: ${path.relative(root, workflowsPath)} -> ${path.relative(root, out)} ` +
      `(${Math.round(code.length / 1024)} KiB, ${Date.now() - started} ms)`,
  );
}

main().catch((err: unknown) => {
  console.error('bundle-workflows: failed to bundle the workflows');
  console.error(err);
  process.exitCode = 1;
});
