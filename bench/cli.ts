/**
 * CLI start-up benchmark (issue 13): how long `runfleet` commands take from the shell, built
 * (`npm run build`: compiled JavaScript, as an installed package runs it) and from the sources
 * (a checkout: tsx), against `temporal workflow list` on the same server in the same invocation.
 *
 *   npx tsx bench/cli.ts               # 10 samples per command
 *   npx tsx bench/cli.ts --samples 20
 *
 * One headless in-memory dev server of its own, Runfleet's control worker and one runner (the
 * production topology of bench/run.ts), 20 finished one-task runs to list and show. `run list` is
 * timed over gRPC and over the server's HTTP API (`RUNFLEET_HTTP_ADDRESS`), after a check that both
 * print the same; `node -e 0` is the floor any command written for Node pays. Each command
 * is a fresh process, run one after another (never two at once); the table gives p50 and p90 of
 * the wall time and the ratio of each p50 to `temporal workflow list`'s. Builds first when
 * `dist/` is missing or older than the sources. A measurement, not a test: exits 0 whatever the
 * figures, non-zero only on errors.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { RunfleetClient } from '../src/client/client';
import { installBenchRuntime } from './runtime';
import { formatTable, percentile, wholeFlag } from './stats';
import {
  NAMESPACE,
  PROJECT_ROOT,
  RUNFLEET_BIN,
  childEnv,
  machineInfo,
  resultsFile,
  startRunfleetFleet,
  unique,
  withBenchServer,
} from './topology';

const BUILT_MAIN = join(PROJECT_ROOT, 'dist', 'src', 'cli', 'main.js');
const RUNS = 20;

/** The newest modification time under the folders the build compiles. */
function newestSource(): number {
  const out = execFileSync(
    'find',
    ['src', 'workflows', 'activities', 'workers', '-name', '*.ts', '-newer', BUILT_MAIN],
    {
      cwd: PROJECT_ROOT,
      encoding: 'utf8',
    },
  );
  return out.trim().length;
}

function ensureBuild(): void {
  if (existsSync(BUILT_MAIN) && newestSource() === 0) return;
  console.error('bench: building (npm run build)');
  execFileSync('npm', ['run', '--silent', 'build'], { cwd: PROJECT_ROOT, stdio: 'inherit' });
}

/** Wall time of one process, in ms; throws with its output when it fails. */
function timed(cmd: string, args: string[], env: NodeJS.ProcessEnv): number {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { cwd: PROJECT_ROOT, env, encoding: 'utf8' });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr || r.stdout}`);
  return ms;
}

async function main(): Promise<void> {
  const samples = wholeFlag('samples', 10);
  ensureBuild();
  installBenchRuntime();
  // The built CLI as an installed package runs it: the bin of a package without sources loads dist.
  const launcherDir = join(PROJECT_ROOT, '.bench');
  mkdirSync(launcherDir, { recursive: true });
  const builtLauncher = join(launcherDir, 'runfleet-built.js');
  writeFileSync(
    builtLauncher,
    `require(${JSON.stringify(BUILT_MAIN)}).main(process.argv, process.env, process.cwd()).then((c) => process.exit(c));\n`,
  );

  await withBenchServer(async ({ binary, address, httpAddress, client, runfleetBundle }) => {
    const fleet = await startRunfleetFleet({ address, runfleetBundle, k: 1, slots: 4 });
    try {
      const rf = RunfleetClient.fromClient(client, { controlTaskQueue: fleet.controlQueue, address });
      const group = `/bench/cli/${unique('g')}`;
      let shown = '';
      for (let i = 0; i < RUNS; i++) {
        const run = await rf.submitRun({
          name: `cli-${i}`,
          group,
          tasks: [{ name: 't', pool: fleet.pool, steps: ['true'] }],
        });
        await rf.waitRun(run.workflowId);
        shown = run.workflowId;
      }
      const env = { ...childEnv(address), RUNFLEET_CONTROL_TASK_QUEUE: fleet.controlQueue };
      const httpEnv = { ...env, RUNFLEET_HTTP_ADDRESS: httpAddress };
      const node = process.execPath;
      const commands: { name: string; cmd: string; args: string[]; env?: NodeJS.ProcessEnv }[] = [
        {
          name: 'temporal workflow list',
          cmd: binary,
          args: ['workflow', 'list', '--address', address, '--namespace', NAMESPACE, '--limit', '20'],
        },
        // The floor of any command written for Node: the runtime's own start, nothing loaded.
        { name: 'node -e 0 (floor)', cmd: node, args: ['-e', '0'] },
        { name: 'runfleet --help (built)', cmd: node, args: [builtLauncher, '--help'] },
        { name: 'runfleet --help (sources, tsx)', cmd: node, args: [RUNFLEET_BIN, '--help'] },
        { name: 'runfleet run list (built)', cmd: node, args: [builtLauncher, 'run', 'list', '--group', group] },
        { name: 'runfleet run list (sources, tsx)', cmd: node, args: [RUNFLEET_BIN, 'run', 'list', '--group', group] },
        {
          name: 'runfleet run list (built, HTTP API)',
          cmd: node,
          args: [builtLauncher, 'run', 'list', '--group', group],
          env: httpEnv,
        },
        { name: 'runfleet run show (built)', cmd: node, args: [builtLauncher, 'run', 'show', shown] },
        { name: 'runfleet run show (sources, tsx)', cmd: node, args: [RUNFLEET_BIN, 'run', 'show', shown] },
      ];
      // The HTTP API's answers must be gRPC's, or the comparison is moot.
      for (const args of [
        ['run', 'list', '--group', group, '--json'],
        ['run', 'list', '--group', group, '--count', '--json'],
      ]) {
        const viaGrpc = spawnSync(node, [builtLauncher, ...args], { cwd: PROJECT_ROOT, env, encoding: 'utf8' });
        const viaHttp = spawnSync(node, [builtLauncher, ...args], {
          cwd: PROJECT_ROOT,
          env: httpEnv,
          encoding: 'utf8',
        });
        if (viaGrpc.stdout !== viaHttp.stdout || viaGrpc.stdout.length === 0)
          throw new Error(
            `runfleet ${args.join(' ')}: gRPC and HTTP API differ:\n${viaGrpc.stdout}${viaGrpc.stderr}\n---\n${viaHttp.stdout}${viaHttp.stderr}`,
          );
      }
      // One warm-up each (disk cache), then the samples, commands interleaved so none gets a quieter moment.
      for (const c of commands) timed(c.cmd, c.args, c.env ?? env);
      const times = new Map<string, number[]>(commands.map((c) => [c.name, []]));
      for (let s = 0; s < samples; s++)
        for (const c of commands) times.get(c.name)!.push(timed(c.cmd, c.args, c.env ?? env));

      const base = percentile(times.get(commands[0]!.name)!, 50);
      const rows = commands.map((c) => {
        const t = times.get(c.name)!;
        const p50 = percentile(t, 50);
        return [c.name, p50.toFixed(0), percentile(t, 90).toFixed(0), (p50 / base).toFixed(2)];
      });
      console.log(`\nCLI wall time, ${samples} samples each (ms), ratio = p50 / temporal workflow list's p50\n`);
      console.log(formatTable(['command', 'p50', 'p90', 'ratio'], rows));
      const file = resultsFile('cli');
      writeFileSync(
        file,
        JSON.stringify(
          { machine: machineInfo(), samples, builtAt: statSync(BUILT_MAIN).mtime, times: Object.fromEntries(times) },
          null,
          2,
        ),
      );
      console.log(`\nresults: ${file}`);
    } finally {
      await fleet.fleet.stop();
    }
  });
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
