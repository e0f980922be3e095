/** The runner's own config file: its layer in loadConfig, `--set` values, the file, the prompts. */
import { mkdtempSync, readFileSync, statSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { loadConfig, runnerStateDir } from '../../src/config';
import {
  displayValue,
  effectiveSettings,
  loadRunnerConfig,
  maskToken,
  parseSetting,
  promptSettings,
  readRunnerSettings,
  settingsProblems,
  writeRunnerSettings,
} from '../../src/runner/local-config';

function tmp(): string {
  return mkdtempSync(join(tmpdir(), 'runfleet-local-config-'));
}

describe('runner.yaml as a config layer', () => {
  it('sits above the config file and below the environment and flags', () => {
    const cwd = tmp();
    writeFileSync(
      join(cwd, 'runfleet.yaml'),
      'runner:\n  pool: from-main\n  slots: 2\ntemporal:\n  namespace: main-ns\n',
    );
    const file = join(cwd, 'runner.yaml');
    writeFileSync(
      file,
      'runner:\n  pool: from-runner\n  healthPort: 9100\n  dockerSocket: sock/podman.sock\ntemporal:\n  address: runner-host:7233\n',
    );
    const c = loadConfig({ cwd, env: {}, configFile: 'runfleet.yaml', runnerConfigFile: file });
    expect(c.runner.pool).toBe('from-runner');
    expect(c.runner.slots).toBe(2);
    expect(c.runner.healthPort).toBe(9100);
    // Paths are relative to the file that holds them.
    expect(c.runner.dockerSocket).toBe(join(cwd, 'sock', 'podman.sock'));
    expect(c.temporal.namespace).toBe('main-ns');
    expect(
      loadConfig({ cwd, env: { TEMPORAL_ADDRESS: 'env-host:7233' }, runnerConfigFile: file }).temporal.address,
    ).toBe('env-host:7233');
    expect(loadConfig({ cwd, env: {}, runnerConfigFile: file, flags: { pool: 'flag' } }).runner.pool).toBe('flag');
    // No file is the normal case.
    expect(
      loadConfig({ cwd, env: {}, configFile: 'runfleet.yaml', runnerConfigFile: join(cwd, 'none.yaml') }).runner.pool,
    ).toBe('from-main');
  });

  it('names the file and key of a bad value, and refuses keys a runner file may not set', () => {
    const cwd = tmp();
    const file = join(cwd, 'runner.yaml');
    writeFileSync(file, 'runner:\n  slots: 999\n');
    expect(() => loadConfig({ cwd, env: {}, runnerConfigFile: file })).toThrow(
      `${file}: runner.slots: must be at most 256`,
    );
    writeFileSync(file, 'runner:\n  drivers: [process, lxc]\n');
    expect(() => loadConfig({ cwd, env: {}, runnerConfigFile: file })).toThrow(`${file}: runner.drivers`);
    writeFileSync(file, 'home: /elsewhere\nrunner:\n  colour: red\n');
    expect(() => loadConfig({ cwd, env: {}, runnerConfigFile: file })).toThrow(
      `${file}: unknown fields home, runner.colour (a runner file takes temporal.address`,
    );
    writeFileSync(file, 'runner: [\n');
    expect(() => loadConfig({ cwd, env: {}, runnerConfigFile: file })).toThrow(file);
  });

  it('finds the state directory from --state-dir or the runner name, then reads its runner.yaml', () => {
    const cwd = tmp();
    const base = loadConfig({ cwd, env: {}, flags: { runnerName: 'r1' } });
    expect(runnerStateDir(base, { cwd })).toBe(join(cwd, '.runfleet', 'runners', 'r1'));
    expect(runnerStateDir(base, { cwd, stateDir: 'st' })).toBe(join(cwd, 'st'));

    mkdirSync(join(cwd, '.runfleet', 'runners', 'r1'), { recursive: true });
    writeFileSync(join(cwd, '.runfleet', 'runners', 'r1', 'runner.yaml'), 'runner:\n  pool: gpu\n');
    const loaded = loadRunnerConfig({ cwd, env: {}, flags: { runnerName: 'r1' } });
    expect(loaded.stateDir).toBe(join(cwd, '.runfleet', 'runners', 'r1'));
    expect(loaded.config.runner.pool).toBe('gpu');
    expect(loadRunnerConfig({ cwd, env: {}, stateDir: 'other' }).config.runner.pool).toBe('default');
  });
});

describe('settings', () => {
  it('converts --set text by key and names unknown keys', () => {
    expect(parseSetting('runner.slots=8')).toEqual(['runner.slots', 8]);
    expect(parseSetting('runner.drivers=process, docker')).toEqual(['runner.drivers', ['process', 'docker']]);
    expect(parseSetting('temporal.address=host:7233')).toEqual(['temporal.address', 'host:7233']);
    expect(() => parseSetting('runner.colour=red')).toThrow(
      /unknown key "runner.colour"; valid keys: temporal.address, /,
    );
    expect(() => parseSetting('runner.slots')).toThrow(/expected key=value/);
  });

  it('reports each bad value by key', () => {
    expect(settingsProblems({ 'runner.slots': 8, 'runner.token': 'rfr_abc' })).toEqual([]);
    expect(settingsProblems({ 'runner.slots': 0 })).toEqual(['runner.slots: must be at least 1']);
    expect(settingsProblems({ 'runner.slots': 'many' })[0]).toMatch(/^runner.slots: /);
    expect(settingsProblems({ 'runner.token': 'abc' })[0]).toMatch(/^runner.token: must be a token printed by/);
    expect(settingsProblems({ 'temporal.address': 'nope' })[0]).toMatch(/^temporal.address: must be host:port/);
  });

  it('writes the file for its owner only, keeping other keys', () => {
    const dir = tmp();
    const file = join(dir, 'state', 'runner.yaml');
    writeRunnerSettings(file, { 'runner.pool': 'p1', 'runner.token': 'rfr_secret123' });
    expect(statSync(file).mode & 0o777).toBe(0o600);
    writeRunnerSettings(file, { ...readRunnerSettings(file), 'runner.slots': 3 });
    expect(readRunnerSettings(file)).toEqual({
      'runner.pool': 'p1',
      'runner.token': 'rfr_secret123',
      'runner.slots': 3,
    });
    expect(readFileSync(file, 'utf8')).toContain('pool: p1');
    const config = loadConfig({ cwd: dir, env: {}, runnerConfigFile: file });
    const shown = effectiveSettings(config);
    expect(shown['runner.token']).toBe('rfr_secr****');
    expect(JSON.stringify(shown)).not.toContain('secret123');
    expect(maskToken('short')).toBe('****');
  });

  it("takes the kubernetes driver's settings, three levels deep, as --set text and in the file", () => {
    const dir = tmp();
    const file = join(dir, 'state', 'runner.yaml');
    const set = [
      'runner.kubernetes.namespace=ci-linux',
      'runner.kubernetes.nodeSelector=runfleet.dev/ci=yes, disk=ssd',
      'runner.kubernetes.serviceAccounts=builder,deployer',
      'runner.kubernetes.serviceAccount=builder',
      'runner.kubernetes.imagePullSecrets=regcred',
      'runner.kubernetes.kubeconfig=/etc/runfleet/kubeconfig',
    ].map(parseSetting);
    expect(set[1]).toEqual(['runner.kubernetes.nodeSelector', { 'runfleet.dev/ci': 'yes', disk: 'ssd' }]);
    const settings = Object.fromEntries(set);
    expect(settingsProblems(settings)).toEqual([]);
    writeRunnerSettings(file, { 'runner.pool': 'linux', ...settings });
    expect(readFileSync(file, 'utf8')).toMatch(
      /runner:\n {2}pool: linux\n {2}kubernetes:\n {4}kubeconfig: \/etc\/runfleet\/kubeconfig\n {4}namespace: ci-linux\n/,
    );
    expect(readRunnerSettings(file)).toEqual({ 'runner.pool': 'linux', ...settings });
    const config = loadConfig({ cwd: dir, env: {}, runnerConfigFile: file });
    expect(config.runner.kubernetes).toEqual({
      kubeconfig: '/etc/runfleet/kubeconfig',
      namespace: 'ci-linux',
      nodeSelector: { 'runfleet.dev/ci': 'yes', disk: 'ssd' },
      serviceAccount: 'builder',
      serviceAccounts: ['builder', 'deployer'],
      imagePullSecrets: ['regcred'],
    });
    expect(effectiveSettings(config)['runner.kubernetes.nodeSelector']).toEqual({
      'runfleet.dev/ci': 'yes',
      disk: 'ssd',
    });
    expect(displayValue({ 'runfleet.dev/ci': 'yes', disk: 'ssd' })).toBe('runfleet.dev/ci=yes,disk=ssd');
    // Checked as the config file's are, by key.
    expect(settingsProblems({ 'runner.kubernetes.namespace': 'Not_A_Namespace' })[0]).toMatch(
      /^runner.kubernetes.namespace: /,
    );
    expect(settingsProblems({ 'runner.kubernetes.nodeSelector': { 'bad key!': 'x' } })[0]).toMatch(
      /^runner.kubernetes.nodeSelector/,
    );
    expect(() => parseSetting('runner.kubernetes.nodeSelector=disk')).toThrow(/"disk" is not key=value/);
  });
});

describe('promptSettings', () => {
  it('keeps a value on Enter, clears it on -, and asks again after a bad answer', async () => {
    const input = new PassThrough();
    const output = new PassThrough();
    let shown = '';
    output.on('data', (d: Buffer) => (shown += d.toString()));
    // One answer per key, in RUNNER_FILE_KEYS order; slots gets a bad answer first.
    const answers = ['', '', '', 'gpu', '-', 'process,docker', '', '999', '6', '', '', ''];
    input.end(answers.join('\n') + '\n');
    const next = await promptSettings({ 'runner.token': 'rfr_tokenvalue1', 'runner.slots': 4 }, { input, output });
    expect(next).toEqual({ 'runner.pool': 'gpu', 'runner.drivers': ['process', 'docker'], 'runner.slots': 6 });
    expect(shown).toContain('runner.slots (tasks run at once) [4]: ');
    expect(shown).toContain('runner.token (registration token (rfr_...)) [rfr_toke****]: ');
    expect(shown).toContain('  runner.slots: must be at most 256\n');
  });

  it('fails when the input ends early', async () => {
    const input = new PassThrough();
    input.end('\n');
    await expect(promptSettings({}, { input, output: new PassThrough() })).rejects.toThrow(/input ended/);
  });
});
