/**
 * Runner labels (`runner create --label os=linux`) and the labels a task asks for (`runs_on`):
 * one set of rules for both, so every label a task can ask for is one a runner can carry.
 * Sandbox-safe: the run spec, which the run workflow validates, uses them.
 */

/** A label key: 1-63 letters, digits, "_", ".", "/" or "-", starting with a letter or digit. */
export const LABEL_KEY_RE = /^[A-Za-z0-9][A-Za-z0-9_./-]{0,62}$/;
/** A label value: at most 63 letters, digits, "_", ".", "/", ":" or "-" (empty allowed). */
export const LABEL_VALUE_RE = /^[A-Za-z0-9_./:-]{0,63}$/;
