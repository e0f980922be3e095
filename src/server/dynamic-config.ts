/**
 * Dynamic config of every Temporal that Runfleet starts (the dev server, `scripts/cluster`), and
 * what docs/operating.md asks of a production service.
 *
 * One partition per task queue. A runner polls its pool's queue with one poller, and only while it
 * has a free slot. Temporal splits a queue into 4 partitions by default, and a task that waits in
 * the backlog of one partition is found only by a poll that lands there: a lone poll that lands on
 * an empty one waits out its long poll first. Measured on the dev server (one poller, one slot,
 * 30 queued 200 ms activities): gaps of 1.4 to 2 s between tasks with 4 partitions, none with 1
 * (10.0 s for all against 11.7 and 15.5 s). In CI a reservation once waited 54 s this way.
 */
export const TASK_QUEUE_DYNAMIC_CONFIG = {
  'matching.numTaskqueueReadPartitions': 1,
  'matching.numTaskqueueWritePartitions': 1,
} as const;
