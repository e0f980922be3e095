/**
 * A real one-node Kubernetes for the kubernetes driver's tests and for trying the driver by hand
 * (`scripts/kube`): kube-apiserver, kube-scheduler and kubelet v1.34 built from the Go module
 * `k8s.io/kubernetes` (scripts/kubernetes/go.mod), on Debian's etcd, containerd, runc and CNI
 * plugins, all on loopback. No kube-controller-manager: the test namespaces get their `default`
 * service account from `createNamespace`, and nothing here needs the other controllers.
 *
 * Binaries are cached under `.tools/bin` (named by version), the pause and busybox images as
 * archives under `.tools/kubernetes`; a cluster's state (PKI, etcd, containerd, kubelet, logs)
 * lives in its own directory and is removed by `stop`. Images reach containerd by import (no
 * registry is needed), so pods use `imagePullPolicy: Never`.
 *
 * Things this machine needs, found the hard way (see ../shared/recipes in the founding notes):
 * containerd's `restrict_oom_score_adj` (root here lacks CAP_SYS_RESOURCE), the kubelet's
 * `failCgroupV1: false` and `cgroupDriver: cgroupfs` (cgroup v1, no systemd).
 */
import { execFile, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import path from 'node:path';
import { RunfleetError } from '../../src/errors';
import { freePorts } from '../../src/server/ports';
import { sleep } from '../../src/sleep';
import { BUSYBOX_IMAGE, ensurePodman, onPath, podmanConfFile, podmanEnv } from './podman';

export const KUBERNETES_VERSION = 'v1.34.12';
/** What the kubelet calls its node; it resolves to loopback, where the kubelet listens. */
export const NODE_NAME = 'localhost';
/** The pause image containerd starts each pod's sandbox from, compiled from the module's pause.c. */
const PAUSE_IMAGE = 'localhost/runfleet-pause:3.10';
const COMPONENTS = ['kube-apiserver', 'kube-scheduler', 'kubelet'] as const;
type Component = (typeof COMPONENTS)[number];
const APT_PACKAGES = [
  'containerd',
  'runc',
  'etcd-server',
  'containernetworking-plugins',
  'gcc',
  'libc6-dev',
  'openssl',
];
const BRIDGE = 'rfkube0';

function unavailable(message: string): RunfleetError {
  return new RunfleetError('ComponentUnavailable', `kubernetes: ${message}`);
}

/** Runs a command; null when it succeeded, else the tail of what it printed. */
function run(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}) {
  const r = spawnSync(cmd, args, {
    encoding: 'utf8',
    cwd: opts.cwd,
    env: opts.env ?? process.env,
    timeout: opts.timeoutMs ?? 600_000,
    maxBuffer: 64 * 2 ** 20,
  });
  if (r.status === 0) return null;
  return (r.error?.message ?? `${r.stderr ?? ''}${r.stdout ?? ''}`).trim().split('\n').slice(-15).join('\n');
}

function must(what: string, cmd: string, args: string[], opts: Parameters<typeof run>[2] = {}): void {
  const failed = run(cmd, args, opts);
  if (failed !== null) throw unavailable(`${what} failed (${cmd} ${args.join(' ')}):\n${failed}`);
}

export interface KubernetesTools {
  bin: Record<Component, string>;
  /** Docker archives of the pause and busybox images, imported into each cluster's containerd. */
  images: string[];
}

/**
 * Installs the Debian packages (apt) and builds the Kubernetes binaries and images when missing.
 * Minutes cold (the Go build), a second when everything is cached.
 */
export function ensureKubernetesTools(projectRoot: string, log: (line: string) => void = () => {}): KubernetesTools {
  if (!['containerd', 'ctr', 'runc', 'etcd', 'gcc', 'openssl'].every(onPath) || !existsSync('/usr/lib/cni/bridge')) {
    log(`kubernetes: installing ${APT_PACKAGES.join(' ')} with apt-get`);
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    const install = ['install', '-y', '-q', '--no-install-recommends', ...APT_PACKAGES];
    if (run('apt-get', install, { env }) !== null) {
      must('apt-get update', 'apt-get', ['update', '-q'], { env });
      must('installing its packages', 'apt-get', install, { env });
    }
  }
  const binDir = path.join(projectRoot, '.tools', 'bin');
  const moduleDir = path.join(projectRoot, 'scripts', 'kubernetes');
  mkdirSync(binDir, { recursive: true });
  const bin = Object.fromEntries(COMPONENTS.map((c) => [c, path.join(binDir, `${c}-${KUBERNETES_VERSION}`)])) as Record<
    Component,
    string
  >;
  const version = KUBERNETES_VERSION.slice(1).split('.');
  const ldflags = ['-s', '-w'];
  for (const pkg of ['k8s.io/component-base/version', 'k8s.io/client-go/pkg/version']) {
    ldflags.push(
      `-X ${pkg}.gitVersion=${KUBERNETES_VERSION}`,
      `-X ${pkg}.gitMajor=${version[0]}`,
      `-X ${pkg}.gitMinor=${version[1]}`,
      `-X ${pkg}.gitTreeState=clean`,
    );
  }
  for (const c of COMPONENTS) {
    if (existsSync(bin[c])) continue;
    log(`kubernetes: building ${c} ${KUBERNETES_VERSION} (minutes the first time)`);
    const started = Date.now();
    const tmp = `${bin[c]}.tmp-${process.pid}`;
    must(
      `building ${c}`,
      'go',
      ['build', '-trimpath', '-ldflags', ldflags.join(' '), '-o', tmp, `k8s.io/kubernetes/cmd/${c}`],
      { cwd: moduleDir, env: { ...process.env, CGO_ENABLED: '0', GOFLAGS: '-mod=readonly' }, timeoutMs: 3_600_000 },
    );
    must('installing the binary', 'mv', [tmp, bin[c]]);
    log(`kubernetes: built ${c} in ${Math.round((Date.now() - started) / 1000)} s`);
  }
  return { bin, images: ensureImages(projectRoot, moduleDir, log) };
}

/** The pause image (from the module's pause.c) and the tests' busybox image, as docker archives. */
function ensureImages(projectRoot: string, moduleDir: string, log: (line: string) => void): string[] {
  const dir = path.join(projectRoot, '.tools', 'kubernetes', KUBERNETES_VERSION);
  const pauseTar = path.join(dir, 'pause.tar');
  const busyboxTar = path.join(dir, 'busybox.tar');
  if (existsSync(pauseTar) && existsSync(busyboxTar)) return [pauseTar, busyboxTar];
  mkdirSync(dir, { recursive: true });
  ensurePodman({ projectRoot, log });
  const env = podmanEnv(podmanConfFile(projectRoot));
  const source = spawnSync('go', ['list', '-m', '-f', '{{.Dir}}', 'k8s.io/kubernetes'], {
    cwd: moduleDir,
    encoding: 'utf8',
  });
  const pauseC = path.join(source.stdout.trim(), 'build', 'pause', 'linux', 'pause.c');
  if (source.status !== 0 || !existsSync(pauseC)) throw unavailable(`no pause.c in the module (${source.stderr})`);
  const rootfs = path.join(dir, 'pause-rootfs');
  rmSync(rootfs, { recursive: true, force: true });
  mkdirSync(rootfs, { recursive: true });
  log('kubernetes: building the pause image');
  must('compiling pause', 'gcc', [
    '-Os',
    '-static',
    '-DVERSION=v3.10-runfleet',
    '-o',
    path.join(rootfs, 'pause'),
    pauseC,
  ]);
  must('packing pause', 'tar', ['-C', rootfs, '-cf', `${pauseTar}.rootfs`, '.']);
  must(
    'importing pause',
    'podman',
    ['import', '--change', 'ENTRYPOINT ["/pause"]', `${pauseTar}.rootfs`, PAUSE_IMAGE],
    {
      env,
    },
  );
  rmSync(`${pauseTar}.rootfs`, { force: true });
  rmSync(rootfs, { recursive: true, force: true });
  for (const [image, tar] of [
    [PAUSE_IMAGE, pauseTar],
    [BUSYBOX_IMAGE, busyboxTar],
  ] as const) {
    rmSync(`${tar}.tmp`, { force: true });
    must(`saving ${image}`, 'podman', ['save', '-q', '--format', 'docker-archive', '-o', `${tar}.tmp`, image], { env });
    must('installing the archive', 'mv', [`${tar}.tmp`, tar]);
  }
  return [pauseTar, busyboxTar];
}

export interface KubernetesClusterInfo {
  /** The cluster-admin kubeconfig (a static token): tests and `scripts/kube` use it. */
  kubeconfig: string;
  /** `https://127.0.0.1:PORT`. */
  server: string;
  /** The cluster's CA certificate (PEM file), for kubeconfigs of other users. */
  caFile: string;
  node: string;
}

interface Ports {
  api: number;
  etcd: number;
  etcdPeer: number;
  kubelet: number;
  kubeletHealthz: number;
}

/** One cluster's processes and files, in `stateDir`. */
export class KubernetesCluster {
  private readonly dir: string;
  private readonly log: (line: string) => void;
  private info: KubernetesClusterInfo | undefined;

  constructor(private readonly opts: { projectRoot: string; stateDir: string; log?: (line: string) => void }) {
    this.dir = opts.stateDir;
    this.log = opts.log ?? (() => {});
  }

  private p(...parts: string[]): string {
    return path.join(this.dir, ...parts);
  }

  /** Builds what is missing, starts every part and waits for the node to be Ready. */
  async start(): Promise<KubernetesClusterInfo> {
    const tools = ensureKubernetesTools(this.opts.projectRoot, this.log);
    await this.stop();
    for (const d of ['pki', 'etc/cni', 'logs', 'run', 'data']) mkdirSync(this.p(d), { recursive: true });
    const [api, etcd, etcdPeer, kubelet, kubeletHealthz] = await freePorts(5);
    const ports: Ports = {
      api: api!,
      etcd: etcd!,
      etcdPeer: etcdPeer!,
      kubelet: kubelet!,
      kubeletHealthz: kubeletHealthz!,
    };
    const server = `https://127.0.0.1:${ports.api}`;
    const tokens = this.pki(server);
    this.configs(ports);
    const t0 = Date.now();
    const elapsed = () => `${((Date.now() - t0) / 1000).toFixed(1)} s`;

    this.daemon('containerd', 'containerd', ['--config', this.p('etc', 'containerd.toml')]);
    await this.waitFor('containerd', () => run('ctr', this.ctrArgs('version'), { timeoutMs: 5_000 }) === null, 30_000);
    for (const image of tools.images) must('importing an image', 'ctr', this.ctrArgs('images', 'import', image));
    this.log(`kubernetes: containerd up, images imported (${elapsed()})`);

    // prettier-ignore
    this.daemon('etcd', 'etcd', [
      '--name', 'runfleet', '--data-dir', this.p('data', 'etcd'),
      '--listen-client-urls', `http://127.0.0.1:${ports.etcd}`, '--advertise-client-urls', `http://127.0.0.1:${ports.etcd}`,
      '--listen-peer-urls', `http://127.0.0.1:${ports.etcdPeer}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${ports.etcdPeer}`,
      '--initial-cluster', `runfleet=http://127.0.0.1:${ports.etcdPeer}`,
    ]);
    const pki = (f: string) => this.p('pki', f);
    // prettier-ignore
    this.daemon('kube-apiserver', tools.bin['kube-apiserver'], [
      `--etcd-servers=http://127.0.0.1:${ports.etcd}`,
      '--bind-address=127.0.0.1', `--secure-port=${ports.api}`, '--advertise-address=127.0.0.1',
      '--endpoint-reconciler-type=none', '--service-cluster-ip-range=10.96.0.0/16',
      `--tls-cert-file=${pki('apiserver.crt')}`, `--tls-private-key-file=${pki('apiserver.key')}`,
      `--client-ca-file=${pki('ca.crt')}`, `--token-auth-file=${this.p('etc', 'tokens.csv')}`,
      '--authorization-mode=Node,RBAC',
      '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
      `--service-account-key-file=${pki('sa.pub')}`, `--service-account-signing-key-file=${pki('sa.key')}`,
      `--kubelet-client-certificate=${pki('kubelet-client.crt')}`, `--kubelet-client-key=${pki('kubelet-client.key')}`,
      '--kubelet-preferred-address-types=Hostname',
    ]);
    this.info = { kubeconfig: this.p('etc', 'admin.kubeconfig'), server, caFile: pki('ca.crt'), node: NODE_NAME };
    await this.waitFor('the API server', async () => (await this.api('GET', '/readyz')).status === 200, 120_000);
    this.log(`kubernetes: API server ready (${elapsed()})`);
    // What kube-controller-manager would make: the default namespace's service account.
    await this.waitFor(
      'the default namespace',
      async () => (await this.api('GET', '/api/v1/namespaces/default')).status === 200,
      30_000,
    );
    await this.apply('POST', '/api/v1/namespaces/default/serviceaccounts', { metadata: { name: 'default' } });
    this.daemon('kube-scheduler', tools.bin['kube-scheduler'], [
      `--kubeconfig=${this.p('etc', 'admin.kubeconfig')}`,
      '--leader-elect=false',
      '--secure-port=0',
    ]);
    // prettier-ignore
    this.daemon('kubelet', tools.bin.kubelet, [
      `--config=${this.p('etc', 'kubelet.yaml')}`, `--kubeconfig=${this.p('etc', 'kubelet.kubeconfig')}`,
      `--hostname-override=${NODE_NAME}`, `--root-dir=${this.p('data', 'kubelet')}`,
      `--cert-dir=${this.p('data', 'kubelet', 'pki')}`,
    ]);
    await this.waitFor(
      'the node to be Ready',
      async () => {
        const r = await this.api('GET', `/api/v1/nodes/${NODE_NAME}`);
        const node = r.body as { status?: { conditions?: { type: string; status: string }[] } };
        return r.status === 200 && node.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');
      },
      120_000,
    );
    // What the node lifecycle controller would do: the Ready node loses its not-ready taint.
    const untainted = await this.api(
      'PATCH',
      `/api/v1/nodes/${NODE_NAME}`,
      { spec: { taints: null } },
      'application/merge-patch+json',
    );
    if (untainted.status !== 200) throw unavailable(`could not untaint the node: ${JSON.stringify(untainted.body)}`);
    this.log(`kubernetes: node ${NODE_NAME} Ready (${elapsed()}); admin kubeconfig ${this.info.kubeconfig}`);
    void tokens;
    return this.info;
  }

  /**
   * Lets containerd pull from a plain-HTTP registry on this machine (`host` is `127.0.0.1:PORT`):
   * a hosts.toml of its own, read at each pull.
   */
  trustRegistry(host: string): void {
    const dir = this.p('etc', 'certs.d', host);
    mkdirSync(dir, { recursive: true });
    writeFileSync(
      path.join(dir, 'hosts.toml'),
      `server = "http://${host}"\n\n[host."http://${host}"]\n  capabilities = ["pull", "resolve"]\n  skip_verify = true\n`,
    );
  }

  /** A `kubernetes.io/dockerconfigjson` secret in `namespace`: credentials for a registry. */
  async createRegistrySecret(
    namespace: string,
    name: string,
    registry: { host: string; username: string; password: string },
  ): Promise<void> {
    const auth = Buffer.from(`${registry.username}:${registry.password}`).toString('base64');
    const config = JSON.stringify({ auths: { [registry.host]: { auth } } });
    await this.apply('POST', `/api/v1/namespaces/${namespace}/secrets`, {
      metadata: { name },
      type: 'kubernetes.io/dockerconfigjson',
      data: { '.dockerconfigjson': Buffer.from(config).toString('base64') },
    });
  }

  /** Creates a namespace (labelled as given) with its `default` service account. */
  async createNamespace(name: string, labels: Record<string, string> = {}): Promise<void> {
    await this.apply('POST', '/api/v1/namespaces', { metadata: { name, labels } });
    await this.apply('POST', `/api/v1/namespaces/${name}/serviceaccounts`, { metadata: { name: 'default' } });
  }

  /**
   * A kubeconfig for a service account of `namespace` that may only run pods there (the Role
   * docs/kubernetes.md gives runners), made with a token from the TokenRequest API.
   */
  async runnerKubeconfig(namespace: string, account: string): Promise<string> {
    const info = this.started();
    await this.apply('POST', `/api/v1/namespaces/${namespace}/serviceaccounts`, { metadata: { name: account } });
    await this.apply('POST', `/apis/rbac.authorization.k8s.io/v1/namespaces/${namespace}/roles`, {
      metadata: { name: account },
      rules: [
        { apiGroups: [''], resources: ['pods'], verbs: ['create', 'get', 'list', 'watch', 'patch', 'delete'] },
        { apiGroups: [''], resources: ['pods/log'], verbs: ['get'] },
        { apiGroups: [''], resources: ['secrets'], verbs: ['create', 'list', 'delete'] },
      ],
    });
    await this.apply('POST', `/apis/rbac.authorization.k8s.io/v1/namespaces/${namespace}/rolebindings`, {
      metadata: { name: account },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: account },
      subjects: [{ kind: 'ServiceAccount', name: account, namespace }],
    });
    const token = await this.serviceAccountToken(namespace, account);
    const file = this.p('etc', `${namespace}-${account}.kubeconfig`);
    writeFileSync(file, kubeconfig(info.server, info.caFile, account, token, namespace), { mode: 0o600 });
    return file;
  }

  /** A token of a service account (the TokenRequest API), as a pod of it gets one. */
  async serviceAccountToken(namespace: string, account: string): Promise<string> {
    const r = await this.api('POST', `/api/v1/namespaces/${namespace}/serviceaccounts/${account}/token`, {
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenRequest',
      spec: { expirationSeconds: 86_400 },
    });
    const token = (r.body as { status?: { token?: string } }).status?.token;
    if (r.status !== 201 || !token)
      throw unavailable(`no token for ${namespace}/${account}: ${JSON.stringify(r.body)}`);
    return token;
  }

  /** A call to the API server as cluster admin. */
  async api(
    method: string,
    urlPath: string,
    body?: unknown,
    contentType = 'application/json',
  ): Promise<{ status: number; body: unknown }> {
    const info = this.started();
    const token = readFileSync(this.p('etc', 'admin.token'), 'utf8').trim();
    const ca = readFileSync(info.caFile);
    const url = new URL(urlPath, info.server);
    const payload = body === undefined ? undefined : JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = request(
        url,
        {
          method,
          ca,
          headers: {
            authorization: `Bearer ${token}`,
            ...(payload ? { 'content-type': contentType, 'content-length': Buffer.byteLength(payload) } : {}),
          },
          timeout: 10_000,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let parsed: unknown = text;
            try {
              parsed = JSON.parse(text);
            } catch {
              // plain text (/readyz)
            }
            resolve({ status: res.statusCode ?? 0, body: parsed });
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error(`${method} ${urlPath}: no answer in 10 s`)));
      req.on('error', reject);
      req.end(payload);
    });
  }

  private async apply(method: string, urlPath: string, body: unknown): Promise<void> {
    const r = await this.api(method, urlPath, body);
    if (r.status >= 300 && r.status !== 409)
      throw unavailable(`${method} ${urlPath}: ${r.status} ${JSON.stringify(r.body)}`);
  }

  private started(): KubernetesClusterInfo {
    if (!this.info) throw unavailable('the cluster is not started');
    return this.info;
  }

  /** Imports an image archive (`podman save`) into the node's containerd, for `imagePullPolicy: Never`. */
  async importImage(archive: string): Promise<void> {
    const failed = await new Promise<string | null>((resolve) =>
      execFile('ctr', this.ctrArgs('images', 'import', archive), { timeout: 300_000 }, (err, stdout, stderr) =>
        resolve(err ? `${err.message}\n${stdout}${stderr}`.trim().split('\n').slice(-10).join('\n') : null),
      ),
    );
    if (failed !== null) throw unavailable(`importing ${archive} failed: ${failed}`);
  }

  /** The containers of this cluster's containerd still running (pods' and sandboxes'). */
  runningContainers(): string[] {
    const r = spawnSync('ctr', this.ctrArgs('tasks', 'ls', '-q'), { encoding: 'utf8' });
    return r.status === 0 ? r.stdout.split('\n').filter((l) => l.trim() !== '') : [];
  }

  /** Stops every part (ours only: by pid file), kills leftover containers, unmounts, removes the state. */
  async stop(): Promise<void> {
    for (const name of ['kubelet', 'kube-scheduler', 'kube-apiserver', 'etcd']) this.kill(name);
    if (existsSync(this.p('run', 'containerd.sock'))) {
      for (const id of this.runningContainers()) run('ctr', this.ctrArgs('tasks', 'kill', '-s', 'KILL', id));
      await sleep(500);
      const listed = spawnSync('ctr', this.ctrArgs('containers', 'ls', '-q'), { encoding: 'utf8' });
      for (const id of listed.stdout?.split('\n').filter((l) => l.trim() !== '') ?? []) {
        run('ctr', this.ctrArgs('tasks', 'delete', id));
      }
    }
    this.kill('containerd');
    const mounts = readFileSync('/proc/mounts', 'utf8')
      .split('\n')
      .map((l) => l.split(' ')[1] ?? '')
      .filter((m) => m.startsWith(`${this.dir}/`))
      .sort()
      .reverse();
    for (const m of mounts) run('umount', ['-l', m]);
    run('ip', ['link', 'del', BRIDGE]);
    rmSync(this.dir, { recursive: true, force: true });
    this.info = undefined;
  }

  /** Output of one part (its log file's tail), for a failing test's message. */
  logTail(name: string, lines = 30): string {
    try {
      return readFileSync(this.p('logs', `${name}.log`), 'utf8')
        .split('\n')
        .slice(-lines)
        .join('\n');
    } catch {
      return '(no log)';
    }
  }

  private ctrArgs(...args: string[]): string[] {
    return ['-a', this.p('run', 'containerd.sock'), '-n', 'k8s.io', ...args];
  }

  private daemon(name: string, cmd: string, args: string[]): void {
    const out = openSync(this.p('logs', `${name}.log`), 'a');
    const child = spawn(cmd, args, { stdio: ['ignore', out, out], detached: true });
    closeSync(out);
    child.unref();
    child.on('error', () => undefined);
    if (child.pid === undefined) throw unavailable(`${name} did not start (${cmd})`);
    writeFileSync(this.p('run', `${name}.pid`), String(child.pid));
  }

  private kill(name: string): void {
    const file = this.p('run', `${name}.pid`);
    if (!existsSync(file)) return;
    const pid = Number(readFileSync(file, 'utf8'));
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // gone already
    }
    rmSync(file, { force: true });
  }

  private async waitFor(what: string, check: () => boolean | Promise<boolean | undefined>, timeoutMs: number) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (await Promise.resolve(check()).catch(() => false)) return;
      if (Date.now() > deadline) {
        const name = what.includes('node') ? 'kubelet' : what.includes('API') ? 'kube-apiserver' : 'containerd';
        throw unavailable(
          `timed out after ${timeoutMs / 1000} s waiting for ${what}; ${name}'s log:\n${this.logTail(name)}`,
        );
      }
      await sleep(200);
    }
  }

  /** CA, serving and kubelet-client certificates, the service-account key pair, static tokens. */
  private pki(server: string): { admin: string; kubelet: string } {
    const pki = (f: string) => this.p('pki', f);
    const ssl = (...args: string[]) => must('making the PKI', 'openssl', args, { cwd: this.p('pki') });
    ssl(
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      pki('ca.key'),
      '-out',
      pki('ca.crt'),
      '-days',
      '30',
      '-subj',
      '/CN=runfleet-test-ca',
    );
    writeFileSync(
      pki('server.ext'),
      'subjectAltName=DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,IP:127.0.0.1,IP:10.96.0.1\n',
    );
    writeFileSync(pki('client.ext'), 'extendedKeyUsage=clientAuth\n');
    for (const [name, subject, ext] of [
      ['apiserver', '/CN=kube-apiserver', 'server.ext'],
      ['kubelet-client', '/O=system:masters/CN=kube-apiserver-kubelet-client', 'client.ext'],
    ] as const) {
      ssl(
        'req',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-keyout',
        pki(`${name}.key`),
        '-out',
        pki(`${name}.csr`),
        '-subj',
        subject,
      );
      // prettier-ignore
      ssl('x509', '-req', '-in', pki(`${name}.csr`), '-CA', pki('ca.crt'), '-CAkey', pki('ca.key'), '-CAcreateserial',
        '-out', pki(`${name}.crt`), '-days', '30', '-extfile', pki(ext));
    }
    ssl('genrsa', '-out', pki('sa.key'), '2048');
    ssl('rsa', '-in', pki('sa.key'), '-pubout', '-out', pki('sa.pub'));
    const admin = randomBytes(16).toString('hex');
    const kubelet = randomBytes(16).toString('hex');
    writeFileSync(
      this.p('etc', 'tokens.csv'),
      `${admin},admin,admin,"system:masters"\n${kubelet},system:node:${NODE_NAME},${NODE_NAME},"system:nodes"\n`,
      { mode: 0o600 },
    );
    writeFileSync(this.p('etc', 'admin.token'), admin, { mode: 0o600 });
    writeFileSync(this.p('etc', 'admin.kubeconfig'), kubeconfig(server, pki('ca.crt'), 'admin', admin, 'default'), {
      mode: 0o600,
    });
    writeFileSync(
      this.p('etc', 'kubelet.kubeconfig'),
      kubeconfig(server, pki('ca.crt'), 'kubelet', kubelet, 'default'),
      {
        mode: 0o600,
      },
    );
    return { admin, kubelet };
  }

  private configs(ports: Ports): void {
    writeFileSync(
      this.p('etc', 'containerd.toml'),
      `version = 2
root = "${this.p('data', 'containerd')}"
state = "${this.p('run', 'containerd')}"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]
[grpc]
  address = "${this.p('run', 'containerd.sock')}"
[plugins]
  [plugins."io.containerd.grpc.v1.cri"]
    sandbox_image = "${PAUSE_IMAGE}"
    restrict_oom_score_adj = true
    [plugins."io.containerd.grpc.v1.cri".containerd]
      snapshotter = "overlayfs"
      default_runtime_name = "runc"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"
        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
          SystemdCgroup = false
    [plugins."io.containerd.grpc.v1.cri".registry]
      config_path = "${this.p('etc', 'certs.d')}"
    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = "/usr/lib/cni"
      conf_dir = "${this.p('etc', 'cni')}"
  [plugins."io.containerd.internal.v1.opt"]
    path = "${this.p('data', 'containerd-opt')}"
`,
    );
    writeFileSync(
      this.p('etc', 'cni', '10-runfleet.conflist'),
      JSON.stringify({
        cniVersion: '1.0.0',
        name: 'runfleet',
        plugins: [
          {
            type: 'bridge',
            bridge: BRIDGE,
            isGateway: true,
            ipMasq: false,
            ipam: {
              type: 'host-local',
              ranges: [[{ subnet: '10.244.0.0/24' }]],
              routes: [{ dst: '0.0.0.0/0' }],
              dataDir: this.p('data', 'cni'),
            },
          },
          { type: 'portmap', capabilities: { portMappings: true } },
        ],
      }),
    );
    writeFileSync(
      this.p('etc', 'kubelet.yaml'),
      `apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: 127.0.0.1
port: ${ports.kubelet}
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: ${ports.kubeletHealthz}
authentication: {anonymous: {enabled: false}, webhook: {enabled: false}, x509: {clientCAFile: ${this.p('pki', 'ca.crt')}}}
authorization: {mode: AlwaysAllow}
cgroupDriver: cgroupfs
failSwapOn: false
failCgroupV1: false
containerRuntimeEndpoint: unix://${this.p('run', 'containerd.sock')}
podLogsDir: ${this.p('data', 'pod-logs')}
evictionHard: {memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
`,
    );
  }
}

function kubeconfig(server: string, caFile: string, user: string, token: string, namespace: string): string {
  return `apiVersion: v1
kind: Config
clusters: [{name: runfleet-test, cluster: {server: "${server}", certificate-authority: "${caFile}"}}]
users: [{name: ${user}, user: {token: "${token}"}}]
contexts: [{name: runfleet-test, context: {cluster: runfleet-test, user: ${user}, namespace: ${namespace}}}]
current-context: runfleet-test
`;
}
