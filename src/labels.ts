/**
 * Runner labels (`runner create --label os=linux`) and the labels a task asks for (`runs_on`):
 * one set of rules for both, so every label a task can ask for is one a runner can carry.
 * Sandbox-safe: the run spec, which the run workflow validates, uses them.
 */

/** A label key: 1-63 letters, digits, "_", ".", "/" or "-", starting with a letter or digit. */
export const LABEL_KEY_RE = /^[A-Za-z0-9][A-Za-z0-9_./-]{0,62}$/;
/** A label value: at most 63 letters, digits, "_", ".", "/", ":" or "-" (empty allowed). */
export const LABEL_VALUE_RE = /^[A-Za-z0-9_./:-]{0,63}$/;

/** A Kubernetes object name (DNS-1123 label): a namespace, a service account, a secret. */
export const K8S_NAME_RE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
/** A Kubernetes label key: an optional DNS prefix and `/`, then a name of 63 characters at most. */
export const K8S_LABEL_KEY_RE =
  /^([a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?\/)?[A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?$/;
/** A Kubernetes label value: empty, or 63 letters, digits, "_", "." or "-" starting and ending alphanumeric. */
export const K8S_LABEL_VALUE_RE = /^([A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?)?$/;
