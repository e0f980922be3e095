/**
 * The `kubernetes` driver: each task runs as one pod (`restartPolicy: Never`, one container) in
 * the runner's namespace, through the Kubernetes API (a kubeconfig, or the service account of the
 * pod the runner runs in). A bare pod rather than a Job: a Job would start the pod again after a
 * node loss or an eviction, and a task runs at most once; the runner is what decides whether
 * anything runs again, and a pod gives it the exit code and the termination message directly.
 *
 * The pod runs the same task script as the other drivers (`task-script.ts`), passed as the
 * container's command: the step markers, the stop-at-first-failure rule and the TERM handling are
 * the same. The workspace is an `emptyDir` of the pod's own (nothing of the runner's disk reaches
 * it, so a task on this driver has no artifacts or cache: the run spec refuses them). At its end
 * the script writes its outcome and the task's outputs file into the container's termination
 * message, which the runner reads from the pod's status; the exit code itself always comes from
 * the container's status, which the task cannot forge.
 *
 * Pods are locked down by default, as the restricted Pod Security Standard asks: non-root (the
 * runner's `containerUser`), no privilege escalation, every capability dropped, seccomp
 * RuntimeDefault, no service account token unless the operator names a service account, no
 * service links. Limits: memory (the task's or the runner's default, never above its maximum) and
 * CPU, each as both request and limit. Node selector: the runner's, plus the task's (which may add
 * labels, never change the runner's). A task's service account must be one the runner allows.
 *
 * The pod's name is made from the task's identity (run, task, attempt, runner), so the runner
 * finds it again after a restart with no record of its own (`findsTasksWithoutHandle`), and a
 * create repeated after a crash finds the pod it made. Its labels (`runfleet.dev/*`) say which
 * run, task, attempt, runner and pool it belongs to; the exact values are in its annotations.
 *
 * A stop, or the task's timeout, shortens the pod's `activeDeadlineSeconds`: the kubelet sends
 * TERM (the script passes it to the step), waits the grace period, then KILL, and keeps the pod's
 * status, so the stopped task's exit code and failed step are still read. The pod is deleted once
 * its outcome is written to the session dir; if it never reports (its node gone), it is deleted
 * with the grace period, then forced.
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join, posix, relative, resolve, sep } from 'node:path';
import { Writable } from 'node:stream';
import type { CoreV1Api, KubeConfig, V1Pod, V1Secret } from '@kubernetes/client-node';
import { formatCpu } from '../bytes';
import { RunfleetError } from '../errors';
import { K8S_LABEL_VALUE_RE } from '../labels';
import { sleep } from '../sleep';
import type { PullPolicy } from '../types';
import { containerLimits, DEFAULT_DROP_ENV, type ContainerPolicy } from './docker-driver';
import { finished, type Driver, type DriverResult, type DriverRun, type TaskLabels } from './driver';
import { drain, fileSize, logSink, readText, reconcileLog } from './log-sink';
import { EXIT_FILE, POD_OUTPUTS_MAX_BYTES, quote, readExitFile, taskScript } from './task-script';

/** Where the pod's workspace (an emptyDir) is mounted. */
export const POD_WORKDIR = '/workspace';
/** `$RUNFLEET_OUTPUT` in the pod. */
const POD_OUTPUT_FILE = `${POD_WORKDIR}/.runfleet-output`;
/** The script's own directory in the pod (an emptyDir): `$0`'s, where it keeps its step file. */
const POD_SCRIPT_DIR = '/.runfleet';
const TERMINATION_LOG = '/dev/termination-log';
const CONTAINER = 'task';
/** Seconds between TERM and KILL when a task is stopped: the other drivers' grace. */
const STOP_GRACE_S = 5;
/** How often a pod's status is read when its watch says nothing (the watch wakes the loop at once). */
const POLL_MS = 2_000;
/** Where `$RUNFLEET_OUTPUT` is on the runner, for the outputs of a task re-attached after a restart. */
const OUTPUT_PATH_FILE = 'output-path';
/** What the log file had when the pod started: what a re-attach skips of the pod's log. */
const LOG_OFFSET_FILE = 'log-offset';
const LABEL_PREFIX = 'runfleet.dev';
export const POD_MANAGED_LABEL = `${LABEL_PREFIX}/managed`;
/** Extra seconds on a pod's deadline past the task's own: the runner's timeout acts first. */
const DEADLINE_MARGIN_S = 60;
/**
 * Container states that mean the pod will not start, and how long each may last before the task
 * fails with it: a wrong image name or a missing image under `never` is final at once; a failed
 * pull or a config error may be a moment's (a registry hiccup, the env Secret not yet in the
 * kubelet's cache), which the kubelet tries again.
 */
const START_FAILURE_GRACE_MS: Record<string, number> = {
  ErrImageNeverPull: 0,
  InvalidImageName: 0,
  ErrImagePull: 10_000,
  ImagePullBackOff: 10_000,
  CreateContainerConfigError: 10_000,
  CreateContainerError: 10_000,
  RunContainerError: 10_000,
};
/** How long the API server may be away before following a pod gives up. */
const TRANSIENT_MS = 5 * 60_000;

export interface KubernetesPolicy {
  /** The pods' namespace. */
  namespace: string;
  /** Node labels every pod needs. */
  nodeSelector: Record<string, string>;
  /** The service account of a pod whose task names none; none: no token mounted. */
  serviceAccount?: string;
  /** Service accounts a task may name. */
  serviceAccounts: readonly string[];
  imagePullSecrets: readonly string[];
}

export interface KubernetesDriverOptions {
  /** A kubeconfig file; absent: in-cluster (the runner's own pod's service account). */
  kubeconfig?: string;
  runner: string;
  pool: string;
  policy: KubernetesPolicy;
  /** User, root, memory and CPU of the tasks' containers (the docker driver's policy; pids do not apply). */
  container: ContainerPolicy;
  dropEnv?: readonly string[];
}

/** `runfleet-<pool>` as a Kubernetes name: the default namespace of a pool's pods. */
export function defaultNamespace(pool: string): string {
  const slug = pool
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '');
  return `runfleet-${slug}`.slice(0, 63).replace(/-+$/, '');
}

interface Api {
  core: CoreV1Api;
  config: KubeConfig;
}

/** The client library, loaded only by a runner that offers the driver: it is large. */
function client(): typeof import('@kubernetes/client-node') {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded on use (tsx keeps import() as ESM)
  return require('@kubernetes/client-node') as typeof import('@kubernetes/client-node');
}

function loadApi(kubeconfig: string | undefined): Api {
  const k8s = client();
  const config = new k8s.KubeConfig();
  if (kubeconfig !== undefined) {
    if (!existsSync(kubeconfig)) {
      throw new RunfleetError(
        'DriverUnavailable',
        `kubernetes driver: kubeconfig ${kubeconfig} does not exist (runner.kubernetes.kubeconfig)`,
      );
    }
    try {
      config.loadFromFile(kubeconfig);
    } catch (err) {
      throw new RunfleetError(
        'DriverUnavailable',
        `kubernetes driver: kubeconfig ${kubeconfig} cannot be read: ${(err as Error).message}`,
      );
    }
  } else if (process.env['KUBERNETES_SERVICE_HOST']) {
    config.loadFromCluster();
  } else {
    throw new RunfleetError(
      'DriverUnavailable',
      'kubernetes driver: no kubeconfig (runner.kubernetes.kubeconfig, RUNFLEET_KUBECONFIG or KUBECONFIG) and not running in a pod (KUBERNETES_SERVICE_HOST is unset)',
    );
  }
  if (!config.getCurrentCluster()) {
    throw new RunfleetError(
      'DriverUnavailable',
      `kubernetes driver: kubeconfig ${kubeconfig} names no current cluster`,
    );
  }
  return { core: config.makeApiClient(k8s.CoreV1Api), config };
}

export function createKubernetesDriver(opts: KubernetesDriverOptions): Driver {
  const api = loadApi(opts.kubeconfig);
  const ns = opts.policy.namespace;
  const dropEnv = new Set(opts.dropEnv ?? DEFAULT_DROP_ENV);

  /** API calls, with an unreachable server or a refusal turned into one clear error. */
  async function call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (statusOf(err) !== undefined) throw err;
      throw new RunfleetError(
        'DriverUnavailable',
        `kubernetes driver: the API server at ${api.config.getCurrentCluster()?.server} does not answer (${what}: ${(err as Error).message})`,
      );
    }
  }

  /**
   * `readPod` through an API server that may be away for a while (a restart, a 429 or 5xx):
   * tried again until it answers, for as long as TRANSIENT_MS at most. A task's pod goes on
   * running meanwhile, and giving up early would leave it running with nobody to report it.
   */
  async function readPodPatiently(name: string): Promise<V1Pod | null> {
    const since = Date.now();
    for (let wait = 250; ; wait = Math.min(wait * 2, 5_000)) {
      try {
        return await readPod(name);
      } catch (err) {
        if (!transient(err) || Date.now() - since > TRANSIENT_MS) throw err;
        await sleep(wait);
      }
    }
  }

  async function readPod(name: string): Promise<V1Pod | null> {
    return call('read pod', () => api.core.readNamespacedPod({ name, namespace: ns })).catch((err: unknown) => {
      if (statusOf(err) === 404) return null;
      throw err;
    });
  }

  /** Deletes the task's pod and its env Secret (same name). */
  async function deletePod(name: string, graceSeconds: number): Promise<void> {
    await call('delete pod', () =>
      api.core.deleteNamespacedPod({ name, namespace: ns, gracePeriodSeconds: graceSeconds }),
    ).catch((err: unknown) => {
      if (statusOf(err) !== 404) throw err;
    });
    await call('delete secret', () => api.core.deleteNamespacedSecret({ name, namespace: ns })).catch(
      (err: unknown) => {
        if (statusOf(err) !== 404) throw err;
      },
    );
  }

  /**
   * TERM now, KILL after the grace, the pod's status kept: its deadline is made already past
   * (`activeDeadlineSeconds` counts from its start and may only shrink).
   */
  async function stopPod(name: string): Promise<void> {
    const pod = await readPod(name);
    if (!pod || isTerminated(pod)) return;
    const state = pod.status?.containerStatuses?.[0]?.state;
    if (!pod.spec?.nodeName) {
      // No node took it: nothing of the task ran, and a deadline would never count. It goes now.
      await deletePod(name, 0);
      return;
    }
    if (!pod.status?.startTime || (!state?.running && !state?.terminated)) {
      // On a node, not seen running yet (pulling, creating; the kubelet's status may lag): the
      // kubelet stops whatever started, TERM then KILL after the grace.
      await deletePod(name, STOP_GRACE_S);
      return;
    }
    const started = new Date(pod.status.startTime).getTime();
    const seconds = Math.max(1, Math.floor((Date.now() - started) / 1000));
    await call('stop pod', () =>
      api.core.patchNamespacedPod(
        { name, namespace: ns, body: { spec: { activeDeadlineSeconds: seconds } } },
        // A merge patch: the body's one field, nothing else.
        mergePatch(),
      ),
    ).catch(async (err: unknown) => {
      // Not started yet, or the patch refused: delete it (grace, then force, by the kubelet).
      if (statusOf(err) === 404) return;
      await deletePod(name, STOP_GRACE_S);
    });
  }

  /**
   * Follows the pod until its container ended: its log into the log file (from `skip` bytes on),
   * its pending reasons into the log once each. Returns the ended pod, or null when it vanished.
   */
  async function follow(
    name: string,
    req: { logFile: string; task: string; offsetFile?: string },
    skip: number,
    signal: AbortSignal,
  ): Promise<{ pod: V1Pod | null; written: number }> {
    const out = logSink(req.logFile, skip);
    let streaming: Promise<void> | null = null;
    let abortStream: (() => void) | null = null;
    // The pod's changes through a watch wake the loop at once; the loop also reads the pod every
    // POLL_MS, so a watch that breaks (an API server restart) costs time, never the outcome.
    let wake: (() => void) | null = null;
    // Set by an event that came while the loop was not waiting: the next wait is skipped.
    let changed = false;
    let abortWatch: (() => void) | null = null;
    // Set when follow returns: a watch or log request that connects after that is ended at once.
    let closed = false;
    void new (client().Watch)(api.config)
      .watch(
        `/api/v1/namespaces/${ns}/pods`,
        { fieldSelector: `metadata.name=${name}` },
        () => {
          changed = true;
          wake?.();
        },
        () => undefined,
      )
      .then(
        (ctl) => {
          abortWatch = () => ctl.abort();
          if (closed) ctl.abort();
        },
        () => undefined,
      );
    let said = '';
    /** When each start failure was first seen: a transient one (a registry hiccup) may clear. */
    const failingSince = new Map<string, number>();
    let stopAt: number | null = null;
    const onAbort = () => {
      stopAt = Date.now();
      void stopPod(name).catch(() => undefined);
    };
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
    try {
      for (;;) {
        const pod = await readPodPatiently(name);
        if (!pod) return { pod: null, written: out.written() };
        const state = pod.status?.containerStatuses?.[0]?.state;
        if (state?.running && streaming === null) {
          // From here on the file gets the pod's output: a re-attach skips what it has since.
          if (req.offsetFile) writeFileSync(req.offsetFile, String(fileSize(req.logFile)));
          streaming = new Promise<void>((resolveStream) => {
            // The response is piped into the sink, which it ends with the container's output.
            out.writable.once('finish', () => resolveStream());
            new (client().Log)(api.config).log(ns, name, CONTAINER, out.writable, { follow: true }).then(
              (ctl) => {
                abortStream = () => ctl.abort();
                if (closed) ctl.abort();
              },
              () => resolveStream(),
            );
          });
        }
        if (state?.terminated || isTerminated(pod)) {
          // The log stream ends with the container; a broken one (or none: it ended before we
          // looked) is made whole from the pod's full log by `finish`.
          if (streaming) await drain(streaming);
          return { pod, written: out.written() };
        }
        const waiting = state?.waiting ?? pendingReason(pod);
        const line = waiting?.reason ? `${waiting.reason}${waiting.message ? `: ${waiting.message}` : ''}` : '';
        if (line && line !== said && streaming === null) {
          appendFileSync(req.logFile, `==> pod ${name}: ${line}\n`);
          said = line;
        }
        const grace = waiting?.reason === undefined ? undefined : START_FAILURE_GRACE_MS[waiting.reason];
        if (waiting?.reason !== undefined && grace !== undefined) {
          const firstSeen = failingSince.get(waiting.reason) ?? Date.now();
          failingSince.set(waiting.reason, firstSeen);
          if (Date.now() - firstSeen >= grace) {
            throw new RunfleetError('TaskSpawnFailed', `task ${req.task}: pod ${ns}/${name} cannot start: ${line}`);
          }
        }
        // Stopped, and the kubelet never said it ended (its node is gone): delete, forced.
        if (stopAt !== null && Date.now() - stopAt > (STOP_GRACE_S + 30) * 1000) {
          await deletePod(name, 0);
          return { pod: null, written: out.written() };
        }
        await new Promise<void>((resolveWait) => {
          if (changed) return resolveWait();
          const timer = setTimeout(resolveWait, failingSince.size > 0 ? 1_000 : POLL_MS);
          wake = () => {
            clearTimeout(timer);
            resolveWait();
          };
        });
        wake = null;
        changed = false;
      }
    } finally {
      closed = true;
      signal.removeEventListener('abort', onAbort);
      (abortStream as (() => void) | null)?.();
      (abortWatch as (() => void) | null)?.();
      out.close();
    }
  }

  /** The container's whole log as bytes (the API's text would turn invalid UTF-8 into U+FFFD). */
  async function fullLog(name: string): Promise<Buffer | null> {
    const chunks: Buffer[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        chunks.push(chunk);
        done();
      },
    });
    const ended = new Promise<void>((resolveEnded) => sink.once('finish', () => resolveEnded()));
    try {
      await new (client().Log)(api.config).log(ns, name, CONTAINER, sink, { follow: false });
      await ended;
      return Buffer.concat(chunks);
    } catch {
      return null;
    }
  }

  /** Outcome of an ended pod; the log file made whole from the pod's full log. */
  async function finish(
    name: string,
    pod: V1Pod,
    logFile: string,
    have: number,
    written: number,
    sessionDir: string,
    outputFile: string | undefined,
    aborted: boolean,
    steps?: number,
  ): Promise<{ result: DriverResult; finishedAt: string }> {
    const full = await fullLog(name);
    if (full !== null) {
      // The pod's output had not come before (it ended before the first look): it starts here.
      const offsetFile = join(sessionDir, LOG_OFFSET_FILE);
      if (!existsSync(offsetFile)) writeFileSync(offsetFile, String(fileSize(logFile)));
      const expected = full.subarray(have);
      // Append what the stream missed; never cut (a rotated log is shorter than what was read).
      if (expected.length > written) reconcileLog(logFile, expected, written);
    }
    const terminated = pod.status?.containerStatuses?.[0]?.state?.terminated;
    const message = parseTerminationMessage(terminated?.message);
    const exitCode =
      terminated?.exitCode ??
      (pod.status?.reason === 'DeadlineExceeded' ? 137 : pod.status?.phase === 'Succeeded' ? 0 : 1);
    // The message and the markers are the task's to write: a step past the last is none of them.
    const claimed = message?.failedStep ?? lastStepInLog(logFile) ?? 0;
    const failedStep = exitCode === 0 ? null : steps !== undefined ? Math.min(claimed, steps - 1) : claimed;
    if (outputFile !== undefined && message?.outputs) writeFileSync(outputFile, message.outputs);
    const why = endReason(pod, aborted);
    if (why) appendFileSync(logFile, `==> pod ${name}: ${why}\n`);
    if (message?.outputsCut) {
      // As the runner says of any outputs file it refuses (activities/runner.ts, taskOutputs).
      appendFileSync(
        logFile,
        `==> outputs ignored ($RUNFLEET_OUTPUT): it holds more than the ${POD_OUTPUTS_MAX_BYTES} bytes a pod's termination message carries\n`,
      );
    }
    const finishedAt = terminated?.finishedAt
      ? new Date(terminated.finishedAt).toISOString()
      : new Date().toISOString();
    const result = { exitCode, failedStep, aborted };
    // Recorded before the pod goes: a runner killed right after still knows how it ended.
    writeFileSync(
      join(sessionDir, EXIT_FILE),
      `${JSON.stringify({ exitCode, failedStep: exitCode === 0 ? null : failedStep })}\n`,
    );
    return { result, finishedAt };
  }

  return {
    name: 'kubernetes',
    findsTasksWithoutHandle: true,

    async run(req) {
      if (req.signal.aborted) return { exitCode: 130, failedStep: 0, aborted: true };
      if (!req.image) {
        throw new RunfleetError(
          'InvalidRunSpec',
          `task ${req.labels.task} runs on the kubernetes driver but names no image`,
        );
      }
      // Refused before anything is made: nothing to clean up.
      const spec = podSpec(req, opts, ns);
      const secret = envSecret(req, ns, dropEnv);
      const name = podName(req.labels);
      const sessionDir = resolve(req.sessionDir);
      mkdirSync(sessionDir, { recursive: true });
      writeFileSync(req.logFile, `==> pod ${ns}/${name} (image ${req.image})\n`, { flag: 'a' });
      // Written when the pod's output starts to come: until then the file has none of it.
      const offsetFile = join(sessionDir, LOG_OFFSET_FILE);
      rmSync(offsetFile, { force: true });
      // Where the task's outputs go on the runner: a re-attach after a restart writes them there too.
      if (req.env['RUNFLEET_OUTPUT']) writeFileSync(join(sessionDir, OUTPUT_PATH_FILE), req.env['RUNFLEET_OUTPUT']);
      for (const [what, create] of [
        ['secret', () => api.core.createNamespacedSecret({ namespace: ns, body: secret })],
        ['pod', () => api.core.createNamespacedPod({ namespace: ns, body: spec })],
      ] as const) {
        await call(`create ${what}`, create)
          .catch((err: unknown) => {
            // Made by this runner before a crash: the same task, the same object.
            if (statusOf(err) === 409) return;
            throw new RunfleetError(
              statusOf(err) === 403 || statusOf(err) === 422 ? 'TaskSpawnFailed' : 'DriverUnavailable',
              `task ${req.labels.task}: the API server refused ${what} ${ns}/${name}: ${apiMessage(err)}`,
            );
          })
          .catch(async (err: unknown) => {
            // Nothing runs: what was made goes.
            await deletePod(name, 0).catch(() => undefined);
            throw err;
          });
      }
      req.onStarted?.({ driver: 'kubernetes' });
      let done = false;
      try {
        const followed = await follow(name, { logFile: req.logFile, task: req.labels.task, offsetFile }, 0, req.signal);
        if (!followed.pod) {
          done = true;
          if (req.signal.aborted) {
            // Stopped before its first step (the pod was deleted unstarted), or killed in one.
            const step = lastStepInLog(req.logFile);
            return { exitCode: step === null ? 130 : 137, failedStep: step ?? 0, aborted: true };
          }
          throw new RunfleetError(
            'TaskSpawnFailed',
            `task ${req.labels.task}: pod ${ns}/${name} was deleted while it ran`,
          );
        }
        const { result } = await finish(
          name,
          followed.pod,
          req.logFile,
          0,
          followed.written,
          sessionDir,
          req.env['RUNFLEET_OUTPUT'],
          req.signal.aborted,
          req.steps.length,
        );
        done = true;
        return result;
      } catch (err) {
        // Refused to start (a bad image): nothing ran, the pod goes.
        if (err instanceof RunfleetError && err.code === 'TaskSpawnFailed') done = true;
        throw err;
      } finally {
        // Ended, or never started: the pod has nothing more to tell. (After an API error
        // mid-task it stays, running, for `recover`.)
        if (done) await deletePod(name, 0).catch(() => undefined);
      }
    },

    async recover(session, signal) {
      const sessionDir = resolve(session.sessionDir);
      const name = podName(session.labels);
      const pod = await readPod(name);
      if (!pod) {
        // Its env Secret may be left (made just before the runner died): gone with the task.
        await deletePod(name, 0).catch(() => undefined);
        // Deleted after it ended (the runner died before reporting): the exit file says.
        const done = readExitFile(sessionDir);
        if (done) return finished(done.exitCode, done.failedStep, false, done.finishedAt);
        return {
          state: 'vanished',
          reason: `task ${session.labels.task} (attempt ${session.labels.attempt}) of ${session.labels.run}: its pod ${ns}/${name} is gone and left no outcome`,
        };
      }
      let settled = false;
      try {
        // What the file has of the pod's output: all it got since the output started to come.
        const offsetFile = join(sessionDir, LOG_OFFSET_FILE);
        const offsetText = readText(offsetFile);
        const have = offsetText === null ? 0 : Math.max(0, fileSize(session.logFile) - Number(offsetText));
        const running = !isTerminated(pod);
        if (running) {
          const line = '==> runner restarted: re-attached\n';
          writeFileSync(session.logFile, line, { flag: 'a' });
          // Not the pod's output: a later restart must not count it.
          if (offsetText !== null) writeFileSync(offsetFile, String(Number(offsetText) + Buffer.byteLength(line)));
        }
        // What the file lacks of the pod's log comes from the API: skip what it has.
        // An offset not yet written (the runner died before the output came): written when it comes.
        const followed = await follow(
          name,
          { logFile: session.logFile, task: session.labels.task, ...(offsetText === null ? { offsetFile } : {}) },
          have,
          signal,
        );
        settled = true;
        if (!followed.pod) {
          // Stopped here (a pod that never started, or whose node never answered): aborted.
          if (signal.aborted) {
            const step = lastStepInLog(session.logFile);
            return finished(step === null ? 130 : 137, step ?? 0, true, new Date().toISOString());
          }
          return {
            state: 'vanished',
            reason: `task ${session.labels.task} (attempt ${session.labels.attempt}) of ${session.labels.run}: its pod ${ns}/${name} was deleted`,
          };
        }
        const { result, finishedAt } = await finish(
          name,
          followed.pod,
          session.logFile,
          have,
          followed.written,
          sessionDir,
          readText(join(sessionDir, OUTPUT_PATH_FILE)) ?? undefined,
          running && signal.aborted,
        );
        return finished(result.exitCode, result.failedStep, result.aborted, finishedAt);
      } finally {
        // Known how it ended: the pod goes. (After an API error it stays, for the next look.)
        if (settled) await deletePod(name, 0).catch(() => undefined);
      }
    },

    async sweep({ runners, keep }) {
      const list = await call('list pods', () =>
        api.core.listNamespacedPod({ namespace: ns, labelSelector: `${POD_MANAGED_LABEL}=1` }),
      );
      let removed = 0;
      const pods = new Set<string>();
      for (const pod of list.items) {
        pods.add(pod.metadata?.name ?? '');
        const labels = labelsOf(pod);
        if (!labels || !runners.includes(labels.runner) || keep(labels)) continue;
        await deletePod(pod.metadata?.name ?? '', STOP_GRACE_S);
        removed++;
      }
      // An env Secret whose pod was never made (the runner died between the two): it goes too.
      const secrets = await call('list secrets', () =>
        api.core.listNamespacedSecret({ namespace: ns, labelSelector: `${POD_MANAGED_LABEL}=1` }),
      );
      for (const secret of secrets.items) {
        const labels = labelsOf(secret);
        const name = secret.metadata?.name ?? '';
        if (!labels || pods.has(name) || !runners.includes(labels.runner) || keep(labels)) continue;
        await deletePod(name, 0);
      }
      return removed;
    },
  };
}

/** The pod of a task execution: everything from the task and the runner's policies. */
export function podSpec(
  req: Pick<
    DriverRun,
    | 'steps'
    | 'cwd'
    | 'workspace'
    | 'env'
    | 'labels'
    | 'image'
    | 'pull'
    | 'resources'
    | 'runAsRoot'
    | 'nodeSelector'
    | 'serviceAccount'
    | 'deadline'
  >,
  opts: Pick<KubernetesDriverOptions, 'policy' | 'container'>,
  namespace: string,
): V1Pod {
  const task = req.labels.task;
  // A pod has no pids limit of its own (the node's podPidsLimit applies).
  const { pids: _pids, ...asked } = req.resources ?? {};
  const limits = containerLimits({ ...req, resources: asked }, opts.container);
  const cpu = limits.cpu;
  const nodeSelector = { ...opts.policy.nodeSelector };
  for (const [key, value] of Object.entries(req.nodeSelector ?? {})) {
    if (key in nodeSelector && nodeSelector[key] !== value) {
      throw new RunfleetError(
        'TaskRefused',
        `task ${task} asks for node_selector ${key}=${value}; runner "${req.labels.runner}" runs its pods on ${key}=${nodeSelector[key]} (runner.kubernetes.nodeSelector)`,
      );
    }
    nodeSelector[key] = value;
  }
  const account = req.serviceAccount ?? opts.policy.serviceAccount;
  if (req.serviceAccount !== undefined && !opts.policy.serviceAccounts.includes(req.serviceAccount)) {
    throw new RunfleetError(
      'TaskRefused',
      `task ${task} asks for service account ${req.serviceAccount}; runner "${req.labels.runner}" allows ${opts.policy.serviceAccounts.length > 0 ? opts.policy.serviceAccounts.join(', ') : 'none'} (runner.kubernetes.serviceAccounts)`,
    );
  }
  const [uid, gid] = limits.user.split(':').map(Number) as [number, number];
  const root = uid === 0;
  const workspace = resolve(req.workspace ?? req.cwd);
  const rel = relative(workspace, resolve(req.cwd));
  if (rel.startsWith('..')) {
    throw new RunfleetError('TaskRefused', `task ${task}: working directory ${req.cwd} is outside its workspace`);
  }
  const workdir = rel === '' ? POD_WORKDIR : posix.join(POD_WORKDIR, ...rel.split(sep));
  const outputFile = POD_OUTPUT_FILE;
  const resources: Record<string, string> = { memory: String(limits.memory) };
  if (cpu !== undefined) resources['cpu'] = formatCpu(cpu);
  const script = [
    // The working directory may be one the steps are to find: made, in the pod's own workspace.
    ...(workdir === POD_WORKDIR ? [] : [`mkdir -p ${quote(workdir)} && cd ${quote(workdir)} || exit 1`]),
    taskScript(req.steps, undefined, { terminationLog: TERMINATION_LOG, outputFile }),
  ].join('\n');
  const deadlineS =
    req.deadline !== undefined
      ? Math.max(1, Math.ceil((req.deadline - Date.now()) / 1000)) + DEADLINE_MARGIN_S
      : undefined;
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: podName(req.labels),
      namespace,
      labels: podLabels(req.labels),
      annotations: podAnnotations(req.labels),
    },
    spec: {
      restartPolicy: 'Never',
      terminationGracePeriodSeconds: STOP_GRACE_S,
      ...(deadlineS !== undefined ? { activeDeadlineSeconds: deadlineS } : {}),
      automountServiceAccountToken: account !== undefined,
      ...(account !== undefined ? { serviceAccountName: account } : {}),
      enableServiceLinks: false,
      ...(Object.keys(nodeSelector).length > 0 ? { nodeSelector } : {}),
      ...(opts.policy.imagePullSecrets.length > 0
        ? { imagePullSecrets: opts.policy.imagePullSecrets.map((s) => ({ name: s })) }
        : {}),
      securityContext: {
        runAsNonRoot: !root,
        runAsUser: uid,
        runAsGroup: gid,
        seccompProfile: { type: 'RuntimeDefault' },
      },
      volumes: [
        { name: 'workspace', emptyDir: {} },
        { name: 'runfleet', emptyDir: { medium: 'Memory', sizeLimit: '1Mi' } },
      ],
      containers: [
        {
          name: CONTAINER,
          image: req.image,
          imagePullPolicy: pullPolicy(req.pull ?? 'if-not-present'),
          // Kubernetes expands `$(VAR)` in a command and reads `$$` as `$`: every `$` doubled.
          command: ['/bin/sh', '-c', script.replace(/\$/g, '$$$$'), `${POD_SCRIPT_DIR}/task.sh`],
          workingDir: POD_WORKDIR,
          // The task's env from its Secret: not in the pod's spec, and not expanded by Kubernetes.
          envFrom: [{ secretRef: { name: podName(req.labels) } }],
          resources: { requests: resources, limits: resources },
          terminationMessagePath: TERMINATION_LOG,
          terminationMessagePolicy: 'File',
          securityContext: {
            allowPrivilegeEscalation: false,
            privileged: false,
            capabilities: { drop: ['ALL'] },
            runAsNonRoot: !root,
          },
          volumeMounts: [
            { name: 'workspace', mountPath: POD_WORKDIR },
            { name: 'runfleet', mountPath: POD_SCRIPT_DIR },
          ],
        },
      ],
    },
  };
}

/**
 * The Secret that holds a task's env (the pod reads it through `envFrom`): named and labelled as
 * its pod, so whoever may read the namespace's pods does not read the task's secrets, and
 * Kubernetes' `$(VAR)` expansion never touches a value. Deleted with the pod.
 */
export function envSecret(
  req: Pick<DriverRun, 'env' | 'labels'>,
  namespace: string,
  dropEnv: ReadonlySet<string> = new Set(DEFAULT_DROP_ENV),
): V1Secret {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.env)) {
    if (dropEnv.has(name)) continue;
    env[name] = name === 'RUNFLEET_OUTPUT' ? POD_OUTPUT_FILE : name === 'RUNFLEET_WORKSPACE' ? POD_WORKDIR : value;
  }
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    type: 'Opaque',
    metadata: {
      name: podName(req.labels),
      namespace,
      labels: podLabels(req.labels),
      annotations: podAnnotations(req.labels),
    },
    stringData: env,
  };
}

function pullPolicy(policy: PullPolicy): string {
  return policy === 'always' ? 'Always' : policy === 'never' ? 'Never' : 'IfNotPresent';
}

/** A short digest of the task execution's identity. */
function identityHash(labels: TaskLabels): string {
  return createHash('sha256')
    .update(JSON.stringify([labels.run, labels.task, labels.attempt, labels.runner]))
    .digest('hex')
    .slice(0, 16);
}

/** `rf-<task>-<digest>`: readable in `kubectl get pods`, the same for the same execution. */
export function podName(labels: TaskLabels): string {
  const slug = labels.task
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 40)
    .replace(/-+$/, '');
  return `rf-${slug ? `${slug}-` : ''}${identityHash(labels)}`;
}

/** A value as a label takes it: itself when it can be one, else a digest (the annotation has it whole). */
function labelValue(value: string): string {
  return value !== '' && K8S_LABEL_VALUE_RE.test(value)
    ? value
    : `h-${createHash('sha256').update(value).digest('hex').slice(0, 32)}`;
}

export function podLabels(labels: TaskLabels): Record<string, string> {
  return {
    [POD_MANAGED_LABEL]: '1',
    [`${LABEL_PREFIX}/run`]: labelValue(labels.run),
    [`${LABEL_PREFIX}/task`]: labelValue(labels.task),
    [`${LABEL_PREFIX}/attempt`]: String(labels.attempt),
    [`${LABEL_PREFIX}/runner`]: labelValue(labels.runner),
    [`${LABEL_PREFIX}/pool`]: labelValue(labels.pool),
  };
}

function podAnnotations(labels: TaskLabels): Record<string, string> {
  return {
    [`${LABEL_PREFIX}/run`]: labels.run,
    [`${LABEL_PREFIX}/task`]: labels.task,
    [`${LABEL_PREFIX}/attempt`]: String(labels.attempt),
    [`${LABEL_PREFIX}/runner`]: labels.runner,
    [`${LABEL_PREFIX}/pool`]: labels.pool,
  };
}

/** The task a pod or its env Secret belongs to, from their annotations. */
function labelsOf(object: V1Pod | V1Secret): TaskLabels | null {
  const a = object.metadata?.annotations ?? {};
  const run = a[`${LABEL_PREFIX}/run`];
  const task = a[`${LABEL_PREFIX}/task`];
  const runner = a[`${LABEL_PREFIX}/runner`];
  if (run === undefined || task === undefined || runner === undefined) return null;
  return { run, task, runner, attempt: Number(a[`${LABEL_PREFIX}/attempt`]), pool: a[`${LABEL_PREFIX}/pool`] ?? '' };
}

function isTerminated(pod: V1Pod): boolean {
  const phase = pod.status?.phase;
  return phase === 'Succeeded' || phase === 'Failed';
}

/**
 * What the cluster says ended a pod, when the exit code alone would not tell: its container's
 * reason (`OOMKilled`: the memory limit) or the pod's (`Evicted`, `DeadlineExceeded`), with the
 * pod's message. Null for an ordinary exit, and for a pod the runner stopped itself (its deadline
 * is how a stop reaches the kubelet).
 */
export function endReason(pod: V1Pod, stopped: boolean): string | null {
  if (stopped) return null;
  const terminated = pod.status?.containerStatuses?.[0]?.state?.terminated;
  // The container's message is the task script's termination message, not the cluster's words.
  const container = terminated?.reason;
  if (container && terminated.exitCode !== 0 && container !== 'Error' && container !== 'Completed') return container;
  const reason = pod.status?.phase === 'Failed' ? pod.status.reason : undefined;
  if (!reason) return null;
  return pod.status?.message ? `${reason}: ${pod.status.message}` : reason;
}

/** Why a pod is not running yet: unscheduled, or its container waiting. */
function pendingReason(pod: V1Pod): { reason?: string; message?: string } | undefined {
  const scheduled = pod.status?.conditions?.find((c) => c.type === 'PodScheduled');
  if (scheduled && scheduled.status === 'False')
    return { reason: scheduled.reason ?? 'Unscheduled', message: scheduled.message ?? '' };
  return undefined;
}

/**
 * The script's termination message: the outcome line, then the outputs file, which the script
 * cuts one byte past POD_OUTPUTS_MAX_BYTES: longer than that means a cut file (`outputsCut`,
 * outputs empty), whose lines must not be taken for the task's outputs.
 */
export function parseTerminationMessage(
  message: string | undefined,
): { failedStep: number | null; outputs: string; outputsCut: boolean } | null {
  if (!message) return null;
  const nl = message.indexOf('\n');
  const first = nl < 0 ? message : message.slice(0, nl);
  try {
    const parsed = JSON.parse(first) as { failedStep?: unknown };
    const step = parsed.failedStep;
    const outputs = nl < 0 ? '' : message.slice(nl + 1);
    const outputsCut = Buffer.byteLength(outputs) > POD_OUTPUTS_MAX_BYTES;
    return {
      failedStep: typeof step === 'number' && Number.isInteger(step) && step >= 0 ? step : null,
      outputs: outputsCut ? '' : outputs,
      outputsCut,
    };
  } catch {
    return null;
  }
}

/** The step whose marker came last in the log's tail: the failed step of a task killed mid-step. */
function lastStepInLog(logFile: string): number | null {
  let text: string;
  try {
    const size = fileSize(logFile);
    const buf = readFileSync(logFile);
    text = buf.subarray(Math.max(0, size - 65_536)).toString('utf8');
  } catch {
    return null;
  }
  const all = [...text.matchAll(/^==> step (\d+)\/\d+/gm)];
  const last = all[all.length - 1];
  return last ? Number(last[1]) - 1 : null;
}

/** An API failure that may pass: no answer at all, too many requests, or the server's own error. */
function transient(err: unknown): boolean {
  if (err instanceof RunfleetError) return err.code === 'DriverUnavailable';
  const status = statusOf(err);
  return status === 429 || (status !== undefined && status >= 500);
}

function statusOf(err: unknown): number | undefined {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'number' ? code : undefined;
}

/** The API server's own message in an error (a Status object's `message`). */
function apiMessage(err: unknown): string {
  const body = (err as { body?: unknown }).body;
  if (typeof body === 'string') {
    try {
      const status = JSON.parse(body) as { message?: string };
      if (status.message) return status.message;
    } catch {
      return body.slice(0, 500);
    }
  }
  return (err as Error).message;
}

/** client-node's middleware that sends a patch as a JSON merge patch. */
function mergePatch() {
  const k8s = client();
  return k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch);
}
