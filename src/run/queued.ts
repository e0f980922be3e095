/**
 * A task queued behind a busy lease (docs/run-engine.md): its execution's start-to-close is the
 * task's own timeout plus the wait and this margin, and the runner waits at most what the
 * start-to-close leaves beyond the timeout and the margin. One home for both sides of that sum.
 */
export const QUEUE_MARGIN_MS = 2_000;
