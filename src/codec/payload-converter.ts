/**
 * Runfleet's payload converter: the SDK's default one plus a converter that marks key deliveries
 * (`RegistrationGrant`, `kind: 'runfleet/key-delivery'`) with an encoding of their own, which the
 * encryption codec lets through: a runner must read its grant before it has a key. Nothing in a
 * grant is secret in clear (its keys are sealed for the runner's public key).
 *
 * Loaded by path (`payloadConverterPath`) by workers, clients and the workflow bundle, so it must
 * be sandbox-safe: @temporalio/common only, no Node modules.
 */
import {
  BinaryPayloadConverter,
  CompositePayloadConverter,
  JsonPayloadConverter,
  UndefinedPayloadConverter,
  ValueError,
  type Payload,
  type PayloadConverter,
  type PayloadConverterWithEncoding,
} from '@temporalio/common';
// The SDK's own UTF-8 encoder: works the same in the workflow sandbox and in Node.
import { decode, encode } from '@temporalio/common/lib/encoding';

export const KEY_DELIVERY_ENCODING = 'json/runfleet-key-delivery';
export const KEY_DELIVERY_KIND = 'runfleet/key-delivery';
/** Payload metadata naming the data-key scope a payload is encrypted for (see keys.ts). */
export const KEY_SCOPE_METADATA = 'runfleet-key-scope';
/**
 * Payload metadata a Runfleet converter sets on a value that says what its proof covers (an
 * object with `said`: a runner's execution result or reservation answer,
 * src/security/runner-proof.ts): the proof codec (proof-check.ts) checks those payloads alone.
 */
export const RUNNER_STATEMENT_METADATA = 'runfleet-runner-statement';
/**
 * Payload metadata the proof codec sets, when decoding, on such a payload whose proof it verified
 * with the key the payload names. It strips it from every other payload, so nobody else can set
 * it: it is the codec's word, given where the payload is decoded and never stored.
 */
export const PROOF_CHECKED_METADATA = 'runfleet-proof-checked';
const PROOF_CHECKED_VALUE = 'ed25519';
/** The mark a decoded value gets from PROOF_CHECKED_METADATA: a symbol, which JSON cannot carry. */
const PROOF_CHECKED = Symbol.for('runfleet.proofChecked');

/**
 * Whether the proof codec verified the proof of this value (as decoded) before the workflow saw
 * it. The mark is not enumerable: a copy of the value does not carry it.
 */
export function proofChecked(value: unknown): boolean {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[PROOF_CHECKED] === true;
}

/** The property of a scoped value (`scopedValue`): the scope; `value` holds what is sent. */
const SCOPE_MARK = '__runfleetKeyScope';

const json = new JsonPayloadConverter();

/**
 * Marks a value for one key scope (`pool/<name>`, `runner/<name>`): it is converted as the
 * value itself, with the scope in its metadata, and the encryption codec encrypts it with that
 * scope's key. The receiving side sees the plain value. Workflows mark every activity argument
 * sent to a pool's or runner's queue (workflows/key-scope.ts).
 */
export interface ScopedValue {
  [SCOPE_MARK]: string;
  value: unknown;
}

export function scopedValue(scope: string, value: unknown): ScopedValue {
  return { [SCOPE_MARK]: scope, value };
}

function scopeOf(value: unknown): string | null {
  if (typeof value !== 'object' || value === null) return null;
  const scope = (value as Partial<ScopedValue>)[SCOPE_MARK];
  return typeof scope === 'string' ? scope : null;
}

/** JSON, with an encoding of its own, for objects whose `kind` is `runfleet/key-delivery`. */
export class KeyDeliveryPayloadConverter implements PayloadConverterWithEncoding {
  readonly encodingType = KEY_DELIVERY_ENCODING;

  toPayload(value: unknown): Payload | undefined {
    if (typeof value !== 'object' || value === null || (value as { kind?: unknown }).kind !== KEY_DELIVERY_KIND)
      return undefined;
    const payload = json.toPayload(value);
    if (!payload) return undefined;
    return { ...payload, metadata: { ...payload.metadata, encoding: encode(KEY_DELIVERY_ENCODING) } };
  }

  fromPayload<T>(payload: Payload): T {
    if (!payload.data) throw new ValueError('a key delivery payload has no data');
    return json.fromPayload<T>(payload);
  }
}

const inner = new CompositePayloadConverter(
  new UndefinedPayloadConverter(),
  new KeyDeliveryPayloadConverter(),
  new BinaryPayloadConverter(),
  new JsonPayloadConverter(),
);

/** The composite converter, unwrapping scoped values into their value plus scope metadata. */
class RunfleetPayloadConverter implements PayloadConverter {
  toPayload<T>(value: T): Payload {
    const scope = scopeOf(value);
    if (scope === null) {
      const payload = inner.toPayload(value);
      if (!saysWhatItSigned(value)) return payload;
      return { ...payload, metadata: { ...payload.metadata, [RUNNER_STATEMENT_METADATA]: encode('said') } };
    }
    const payload = inner.toPayload((value as unknown as ScopedValue).value);
    return { ...payload, metadata: { ...payload.metadata, [KEY_SCOPE_METADATA]: encode(scope) } };
  }

  fromPayload<T>(payload: Payload): T {
    const value = inner.fromPayload<T>(payload);
    const checked = payload.metadata?.[PROOF_CHECKED_METADATA];
    if (checked !== undefined && typeof value === 'object' && value !== null && decode(checked) === PROOF_CHECKED_VALUE)
      Object.defineProperty(value, PROOF_CHECKED, { value: true });
    return value;
  }
}

function saysWhatItSigned(value: unknown): boolean {
  if (typeof value !== 'object' || value === null) return false;
  const said = (value as { said?: unknown }).said;
  return typeof said === 'object' && said !== null;
}

/** The metadata value the proof codec sets (`PROOF_CHECKED_METADATA`), as bytes. */
export function proofCheckedMark(): Uint8Array {
  return encode(PROOF_CHECKED_VALUE);
}

export const payloadConverter: PayloadConverter = new RunfleetPayloadConverter();
