/**
 * Dynamic config of every Temporal that Runfleet starts (the dev server, `scripts/cluster`), and
 * what docs/operating.md asks of a production service.
 *
 * One partition per task queue (below), and room for a busy run's events (`maximumBufferedEventsBatch`).
 *
 * One partition per task queue. A runner polls its pool's queue with one poller, and only while it
 * has a free slot. Temporal splits a queue into 4 partitions by default, and a task that waits in
 * the backlog of one partition is found only by a poll that lands there: a lone poll that lands on
 * an empty one waits out its long poll first. Measured on the dev server (one poller, one slot,
 * 30 queued 200 ms activities): gaps of 1.4 to 2 s between tasks with 4 partitions, none with 1
 * (10.0 s for all against 11.7 and 15.5 s). In CI a reservation once waited 54 s this way.
 */
export const SERVER_DYNAMIC_CONFIG = {
  'matching.numTaskqueueReadPartitions': 1,
  'matching.numTaskqueueWritePartitions': 1,
  /**
   * Events the server may buffer for a workflow while its workflow task runs. Past the default
   * (100) it fails that workflow task (FORCE_CLOSE_COMMAND), the worker drops the run from its
   * cache and the next workflow task replays the whole history: a run with 100 tasks out at once
   * met that several times a run, each replay a few thousand events, and the retries buffered more
   * (bench/run.ts, N=1000, K=4 runners of 25 slots: 7 failed workflow tasks, 13.2 CPU-s of the
   * control worker per 1,000 tasks, 49 tasks/s; with 1000: none, 3.3 CPU-s, 88 tasks/s).
   */
  'history.maximumBufferedEventsBatch': 1000,
} as const;
