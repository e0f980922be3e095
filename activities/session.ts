/**
 * The runner's side of its registry session (`runner/<name>` workflow): a long activity the
 * runner heartbeats with its status. The heartbeats are how the fleet knows it is alive (they
 * add nothing to history, so an idle runner costs no workflow tasks); a new session generation
 * is how the fleet changes what the runner must do (enable, disable, settings, delete).
 */
import { Context } from '@temporalio/activity';
import type { RunnerLiveStatus, RunnerSettings } from '../workflows/runner-messages';
import type { RunnerControlActivities, SessionEnd, SessionRequest } from './types';

export interface SessionActivityDeps {
  /** The runner's current status (slots, running tasks, identity). */
  status(): RunnerLiveStatus;
  /** Apply what the session says: take work or not, new settings. */
  apply(req: { enabled: boolean; settings: RunnerSettings; generation: number }): void;
  /** Tell the registry the runner is back (the `sessionOnline` signal). */
  online(generation: number): Promise<void>;
  /** The fleet purged this runner: wipe the state directory and exit 0 once this session has reported. */
  deleteRequested(req: { by: string; reason: string }): void;
  /** Aborted when the runner stops: the session ends at once instead of holding the workers' shutdown. */
  stopping?: AbortSignal;
  /** A session ends itself this long after it started, before its start-to-close timeout. */
  renewAfterMs?: number;
}

export function createSessionActivities(deps: SessionActivityDeps): RunnerControlActivities {
  const renewAfterMs = deps.renewAfterMs ?? 55 * 60_000;
  return {
    async runnerSession(req: SessionRequest): Promise<SessionEnd> {
      const ctx = Context.current();
      if (req.delete) {
        deps.apply({ enabled: false, settings: req.settings, generation: req.generation });
        deps.deleteRequested(req.delete);
        return { reason: 'deleted', status: deps.status() };
      }
      deps.apply({ enabled: req.enabled, settings: req.settings, generation: req.generation });
      ctx.heartbeat(deps.status());
      // Best effort: the registry also learns the runner is back from the session's heartbeats.
      await deps.online(req.generation).catch((err: unknown) => {
        ctx.log.warn(`could not tell the registry the session started: ${(err as Error).message}`);
      });
      const beat = setInterval(() => ctx.heartbeat(deps.status()), req.settings.heartbeatMs);
      const renew = new Promise<'renew'>((resolve) => setTimeout(() => resolve('renew'), renewAfterMs).unref());
      try {
        // A cancel is the registry starting the next generation (or the worker shutting down).
        const stopping = new Promise<void>((resolve) => {
          if (deps.stopping?.aborted) resolve();
          deps.stopping?.addEventListener('abort', () => resolve(), { once: true });
        });
        await Promise.race([renew, stopping, ctx.cancelled]);
        return { reason: 'renew', status: deps.status() };
      } finally {
        clearInterval(beat);
      }
    },

    async pingRunner(): Promise<RunnerLiveStatus> {
      return deps.status();
    },
  };
}
