/**
 * Containers hardened by default, the pure parts: `working_dir` checked in the spec (text) and on
 * the runner's disk (symlinks resolved), the `resources` / `run_as_root` task fields, the runner's
 * container policy (config keys, defaults, maxima) and the driver's refusals.
 */
import { mkdirSync, mkdtempSync, realpathSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { formatByteSize, parseByteSize } from '../../src/bytes';
import { loadConfig } from '../../src/config';
import { containerLimits, DEFAULT_CONTAINER_POLICY, type ContainerPolicy } from '../../src/runner/docker-driver';
import { containerPolicy, parseSetting, promptSettings } from '../../src/runner/local-config';
import { resolveWorkingDir } from '../../src/runner/workspace';
import { checkRunSpec, validateRunSpec, type SpecProblem } from '../../src/spec/validate';
import { normalizeWorkingDir, workingDirProblem } from '../../src/spec/working-dir';
import { PassThrough } from 'node:stream';
import { refusal } from '../helpers/refusal';

type Obj = Record<string, unknown>;
const run = (task: Obj): Obj => ({ name: 'r', tasks: [{ name: 'build', steps: ['true'], ...task }] });

function problems(input: unknown): SpecProblem[] {
  const result = checkRunSpec(input);
  if (result.ok) throw new Error(`expected an invalid spec: ${JSON.stringify(input)}`);
  return result.problems;
}

describe('working_dir in the spec', () => {
  it.each([
    ['/', 'is absolute'],
    ['/etc', 'is absolute'],
    ['../../..', 'leaves the task'],
    ['..', 'leaves the task'],
    ['a/../../b', 'leaves the task'],
    ['./a/./../..', 'leaves the task'],
    ['..\\..', 'leaves the task'],
    ['a\0b', 'NUL'],
  ])('refuses %j, naming the field', (wd, why) => {
    const [p, ...rest] = problems(run({ working_dir: wd }));
    expect(rest).toEqual([]);
    expect(p?.path).toBe('tasks.build.working_dir');
    expect(p?.message).toContain(why);
  });

  it.each(['.', 'src', 'a/b/c', './a/../b', 'a/..', 'x..y', '..a'])('takes %j', (wd) => {
    expect(validateRunSpec(run({ working_dir: wd })).tasks[0]?.working_dir).toBe(wd);
  });

  it('folds "." and "a/.." before judging', () => {
    expect(normalizeWorkingDir('./a/b/../c/')).toEqual(['a', 'c']);
    expect(normalizeWorkingDir('.')).toEqual([]);
    expect(normalizeWorkingDir('a/../..')).toBeNull();
    expect(workingDirProblem('a/b')).toBeNull();
  });
});

describe('resources and run_as_root in the spec', () => {
  it('parses sizes into bytes and keeps pids', () => {
    const t = validateRunSpec(
      run({ driver: 'docker', image: 'busybox', resources: { memory: '512Mi', pids: 64 }, run_as_root: true }),
    ).tasks[0];
    expect(t?.resources).toEqual({ memory: 512 * 2 ** 20, pids: 64 });
    expect(t?.run_as_root).toBe(true);
    expect(validateRunSpec(run({ driver: 'docker', image: 'b' })).tasks[0]?.resources).toBeUndefined();
  });

  it('names each bad field', () => {
    const docker = { driver: 'docker', image: 'busybox' };
    expect(problems(run({ ...docker, resources: { memory: 'lots' } }))).toEqual([
      { path: 'tasks.build.resources.memory', message: '"lots" is not a size like "512Mi" or "2Gi"' },
    ]);
    expect(problems(run({ ...docker, resources: { memory: '1Ki' } }))[0]?.message).toBe('must be between 6Mi and 1Ti');
    expect(problems(run({ ...docker, resources: { pids: 2 } }))).toEqual([
      { path: 'tasks.build.resources.pids', message: 'must be at least 8' },
    ]);
    expect(problems(run({ ...docker, resources: { cpus: 2 } }))[0]?.path).toBe('tasks.build.resources');
  });

  it('are for the container drivers only', () => {
    expect(problems(run({ resources: { pids: 64 } }))).toEqual([
      { path: 'tasks.build.resources', message: 'resources is only for the docker and kubernetes drivers' },
    ]);
    expect(problems(run({ run_as_root: true }))).toEqual([
      { path: 'tasks.build.run_as_root', message: 'run_as_root is only for the docker and kubernetes drivers' },
    ]);
  });
});

describe('byte sizes', () => {
  it('reads binary and decimal units and plain bytes', () => {
    expect(parseByteSize('512Mi')).toBe(536_870_912);
    expect(parseByteSize('2Gi')).toBe(2 ** 31);
    expect(parseByteSize('1G')).toBe(1e9);
    expect(parseByteSize('100mb')).toBe(1e8);
    expect(parseByteSize(1024)).toBe(1024);
    expect(parseByteSize('1.5Ki')).toBe(1536);
    for (const bad of ['', 'Mi', '-1', '1Xi', '1e9', -5, 1.5]) expect(parseByteSize(bad)).toBeNull();
    expect(formatByteSize(8 * 2 ** 30)).toBe('8Gi');
    expect(formatByteSize(1000)).toBe('1000');
  });
});

describe('working_dir on the runner (resolveWorkingDir)', () => {
  function workspace(): string {
    const dir = mkdtempSync(join(tmpdir(), 'rf-wd-'));
    return join(dir, 'work', 'task');
  }

  it('makes the workspace and the directory inside it', () => {
    const ws = workspace();
    expect(resolveWorkingDir(ws, undefined)).toBe(ws);
    expect(resolveWorkingDir(ws, 'a/./b/../c')).toBe(join(ws, 'a', 'c'));
    expect(realpathSync(join(ws, 'a', 'c'))).toBe(join(realpathSync(ws), 'a', 'c'));
  });

  it('answers under the workspace path as given, even when that path goes through a link', () => {
    const real = workspace();
    mkdirSync(real, { recursive: true });
    const via = join(mkdtempSync(join(tmpdir(), 'rf-via-')), 'link');
    symlinkSync(real, via);
    expect(resolveWorkingDir(via, 'src')).toBe(join(via, 'src'));
  });

  it('refuses what a direct workflow start could send past the client', () => {
    const ws = workspace();
    for (const wd of ['/', '../../..', 'a/../../b', 'x\0y']) {
      const err = refusal(() => resolveWorkingDir(ws, wd));
      expect(err.code).toBe('TaskRefused');
      expect(err.message).toMatch(/^working_dir ".*" refused: /);
    }
    // The NUL is shown, not printed raw.
    expect(refusal(() => resolveWorkingDir(ws, 'x\0y')).message).toContain('x\\x00y');
  });

  it('refuses a symlink out of the workspace, and makes nothing beyond it', () => {
    const ws = workspace();
    mkdirSync(ws, { recursive: true });
    const outside = mkdtempSync(join(tmpdir(), 'rf-outside-'));
    symlinkSync(outside, join(ws, 'escape'));
    symlinkSync('/', join(ws, 'root'));
    const err = refusal(() => resolveWorkingDir(ws, 'escape/made-here'));
    expect(err.code).toBe('TaskRefused');
    expect(err.message).toContain('"escape" is a link out of the task\'s workspace');
    expect(() => realpathSync(join(outside, 'made-here'))).toThrow(/ENOENT/);
    expect(refusal(() => resolveWorkingDir(ws, 'root')).code).toBe('TaskRefused');
  });

  it('follows a symlink that stays inside', () => {
    const ws = workspace();
    mkdirSync(join(ws, 'real', 'dir'), { recursive: true });
    symlinkSync('real/dir', join(ws, 'link'));
    expect(resolveWorkingDir(ws, 'link')).toBe(join(ws, 'real', 'dir'));
  });

  it('refuses a file where a directory should be', () => {
    const ws = workspace();
    mkdirSync(ws, { recursive: true });
    writeFileSync(join(ws, 'file'), 'x');
    expect(refusal(() => resolveWorkingDir(ws, 'file/sub')).message).toContain('cannot be made');
  });
});

describe('the container policy', () => {
  const labels = { run: 'run/x/1', task: 'build', attempt: 1, runner: 'r1', pool: 'linux' };
  const policy: ContainerPolicy = {
    user: '1000:1000',
    allowRoot: false,
    memory: { default: 256 * 2 ** 20, max: 2 ** 30 },
    pids: { default: 100, max: 200 },
    cpu: { max: 2000 },
  };

  it('defaults to an unprivileged user and bounded limits', () => {
    expect(DEFAULT_CONTAINER_POLICY.user).toBe('65534:65534');
    expect(DEFAULT_CONTAINER_POLICY.allowRoot).toBe(false);
    expect(containerLimits({ labels }, policy)).toEqual({ user: '1000:1000', memory: 256 * 2 ** 20, pids: 100 });
    expect(containerLimits({ labels, resources: { memory: 2 ** 30, pids: 200 } }, policy)).toEqual({
      user: '1000:1000',
      memory: 2 ** 30,
      pids: 200,
    });
  });

  it('refuses root unless the runner allows it, and anything above its maxima', () => {
    const root = refusal(() => containerLimits({ labels, runAsRoot: true }, policy));
    expect(root.code).toBe('TaskRefused');
    expect(root.message).toContain('run_as_root');
    expect(root.message).toContain('runner.allowRoot');
    expect(containerLimits({ labels, runAsRoot: true }, { ...policy, allowRoot: true }).user).toBe('0:0');
    const memory = refusal(() => containerLimits({ labels, resources: { memory: 2 ** 31 } }, policy));
    expect(memory.code).toBe('TaskRefused');
    expect(memory.message).toBe(
      'task build asks for resources.memory 2Gi; runner "r1" allows at most 1Gi (runner.containerMemoryMax)',
    );
    const pids = refusal(() => containerLimits({ labels, resources: { pids: 201 } }, policy));
    expect(pids.message).toContain('resources.pids 201');
  });

  it('comes from the runner config, with documented defaults', () => {
    const cwd = mkdtempSync(join(tmpdir(), 'rf-policy-'));
    expect(containerPolicy(loadConfig({ cwd, env: {} }).runner)).toEqual(DEFAULT_CONTAINER_POLICY);
    const file = join(cwd, 'runner.yaml');
    writeFileSync(
      file,
      'runner:\n  containerUser: "1000:100"\n  allowRoot: true\n  containerMemory: 512Mi\n  containerMemoryMax: 1Gi\n  containerPids: 64\n  containerPidsMax: 128\n  containerCpu: 500m\n  containerCpuMax: 2\n',
    );
    expect(containerPolicy(loadConfig({ cwd, env: {}, runnerConfigFile: file }).runner)).toEqual({
      user: '1000:100',
      allowRoot: true,
      memory: { default: 512 * 2 ** 20, max: 2 ** 30 },
      pids: { default: 64, max: 128 },
      cpu: { default: 500, max: 2000 },
    });
  });

  it('refuses a bad user, a bad size and a default above its maximum', () => {
    const cwd = mkdtempSync(join(tmpdir(), 'rf-policy-'));
    const file = join(cwd, 'runner.yaml');
    writeFileSync(file, 'runner:\n  containerUser: nobody\n');
    expect(() => loadConfig({ cwd, env: {}, runnerConfigFile: file })).toThrow(
      'runner.containerUser: must be a numeric uid:gid',
    );
    writeFileSync(file, 'runner:\n  containerMemory: 1Ki\n');
    expect(() => loadConfig({ cwd, env: {}, runnerConfigFile: file })).toThrow('runner.containerMemory');
    writeFileSync(file, 'runner:\n  containerPids: 500\n  containerPidsMax: 100\n');
    const config = loadConfig({ cwd, env: {}, runnerConfigFile: file });
    expect(() => containerPolicy(config.runner)).toThrow(
      'runner.containerPids (500) is above runner.containerPidsMax (100)',
    );
  });

  it('is set with --set (booleans and numbers converted), not asked by the prompts', async () => {
    expect(parseSetting('runner.allowRoot=true')).toEqual(['runner.allowRoot', true]);
    expect(parseSetting('runner.containerPids=64')).toEqual(['runner.containerPids', 64]);
    expect(parseSetting('runner.containerMemory=1Gi')).toEqual(['runner.containerMemory', '1Gi']);
    const output = new PassThrough();
    let shown = '';
    output.on('data', (b: Buffer) => (shown += b.toString()));
    const input = new PassThrough();
    input.end('\n'.repeat(11));
    await promptSettings({}, { input, output });
    expect(shown).not.toContain('runner.allowRoot');
    expect(shown).not.toContain('runner.container');
  });
});
