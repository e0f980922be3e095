/**
 * How many frames a stack trace in workflow code keeps. Preloaded once per workflow worker thread
 * (`WORKFLOW_PRELOAD_MODULES` in src/codec/index.ts), the only moment the sandbox's `Error` is
 * not frozen yet; it applies to every workflow of the thread.
 *
 * Why not V8's default of 10: the SDK's promise hook captures and formats a stack trace for every
 * promise a workflow creates (each frame mapped through the bundle's source map), for the
 * stack-trace query of the Web UI and `temporal workflow stack`. A run creates several promises
 * per task: replaying one 2,000-task run cost about 4.1 s of CPU with 10 frames, 3.6 s with 4 and
 * 3.0 s with none (the same history, five interleaved rounds each, medians, replayed as
 * bench/replay.ts does). Four keep the throw site and three callers in a workflow error and its
 * log line, and two frames of where each promise of the stack-trace query was made (the hook's own
 * two frames come first).
 */
export const WORKFLOW_STACK_TRACE_FRAMES = 4;

Error.stackTraceLimit = WORKFLOW_STACK_TRACE_FRAMES;
