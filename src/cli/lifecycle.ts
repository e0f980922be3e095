/**
 * Foreground processes (`up`, `worker`, `runner serve`, `server start-dev`): what was started is
 * stopped in reverse order, once; the first Ctrl-C (SIGINT or SIGTERM) asks for a clean stop,
 * the second forces the exit.
 */
import type { Output } from './output';

/** Exit code of a forced stop, as shells report a second Ctrl-C (128 + SIGINT). */
const FORCED_EXIT_CODE = 130;

export class Lifecycle {
  private readonly releasers: { name: string; release: () => Promise<void> | void }[] = [];
  private readonly stopController = new AbortController();
  private released: Promise<void> | undefined;
  private removeHandlers: (() => void) | undefined;

  constructor(private readonly out: Output) {}

  /** Aborted on the first Ctrl-C, or when `requestStop` is called. */
  get stopSignal(): AbortSignal {
    return this.stopController.signal;
  }

  /** Resolves when a stop is requested. */
  stopped(): Promise<void> {
    const signal = this.stopController.signal;
    return new Promise((resolve) =>
      signal.aborted ? resolve() : signal.addEventListener('abort', () => resolve(), { once: true }),
    );
  }

  requestStop(): void {
    this.stopController.abort();
  }

  /** Registers something to stop; releasers run in the reverse order of registration. */
  add(name: string, release: () => Promise<void> | void): void {
    this.releasers.push({ name, release });
  }

  trapSignals(): void {
    let count = 0;
    const onSignal = (signal: NodeJS.Signals) => {
      count += 1;
      if (count === 1) {
        this.out.log(`${signal}: stopping (press Ctrl-C again to force)`);
        this.requestStop();
      } else {
        this.out.log(`${signal} again: forcing exit`);
        process.exit(FORCED_EXIT_CODE);
      }
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    this.removeHandlers = () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    };
  }

  /** Stops everything registered, newest first; an error in one does not skip the others. */
  releaseAll(): Promise<void> {
    this.released ??= (async () => {
      const errors: unknown[] = [];
      for (const { name, release } of [...this.releasers].reverse()) {
        try {
          this.out.log(`stopping ${name}`);
          await release();
        } catch (err) {
          errors.push(err);
          this.out.error(`runfleet: stopping ${name} failed: ${err instanceof Error ? err.message : String(err)}`);
        }
      }
      this.removeHandlers?.();
      if (errors.length > 0) throw errors[0];
    })();
    return this.released;
  }
}
