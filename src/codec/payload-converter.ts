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
  type PayloadConverterWithEncoding,
} from '@temporalio/common';
// The SDK's own UTF-8 encoder: works the same in the workflow sandbox and in Node.
import { encode } from '@temporalio/common/lib/encoding';

export const KEY_DELIVERY_ENCODING = 'json/runfleet-key-delivery';
export const KEY_DELIVERY_KIND = 'runfleet/key-delivery';

const json = new JsonPayloadConverter();

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

export const payloadConverter = new CompositePayloadConverter(
  new UndefinedPayloadConverter(),
  new KeyDeliveryPayloadConverter(),
  new BinaryPayloadConverter(),
  new JsonPayloadConverter(),
);
