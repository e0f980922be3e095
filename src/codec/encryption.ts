/**
 * A payload codec that encrypts every payload with the ring's current data key for its scope
 * (a payload marked `runfleet-key-scope` by the payload converter: sent to a pool or a runner;
 * see keys.ts), else the current control key: AES-256-GCM,
 * a random 12-byte nonce per payload. The whole payload (its metadata included, so not even the
 * original encoding shows) is serialized and sealed; the key id travels in clear metadata so a
 * rotated ring still decodes older payloads.
 *
 * Wire form of `data`: nonce (12) | ciphertext | tag (16); the key id is authenticated data.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { Payload, PayloadCodec } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import { RunfleetError } from '../errors';
import type { KeyRing } from './keys';
import { KEY_DELIVERY_ENCODING, KEY_SCOPE_METADATA } from './payload-converter';

export const ENCRYPTED_ENCODING = 'binary/encrypted';
export const KEY_ID_METADATA = 'encryption-key-id';
const NONCE_BYTES = 12;
const TAG_BYTES = 16;

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder();

export interface EncryptionCodecOptions {
  /**
   * Refuse payloads that arrive in clear once the ring holds a key (key deliveries excepted):
   * a runner's. Everything a runner is sent comes from a control worker that encrypts it, so a
   * payload in clear is a namespace client without keys speaking to it (a forged `delete`
   * session, a task). Control workers and clients accept clear payloads: `temporal workflow
   * start` sends them.
   */
  refusePlaintext?: boolean;
}

export class EncryptionCodec implements PayloadCodec {
  constructor(
    private readonly keys: KeyRing,
    private readonly opts: EncryptionCodecOptions = {},
  ) {}

  async encode(payloads: Payload[]): Promise<Payload[]> {
    // Read once per batch: a ring set in between must not split one batch across keys.
    const unscoped = this.keys.current();
    if (!unscoped) return payloads; // no key yet (a runner before registration): in clear
    return payloads.map((p) => {
      // A key delivery is readable without a key by design; its keys are sealed for one runner.
      if (encodingOf(p) === KEY_DELIVERY_ENCODING) return p;
      const scope = p.metadata?.[KEY_SCOPE_METADATA];
      const current = (scope ? this.keys.currentFor(textDecoder.decode(scope)) : null) ?? unscoped;
      const nonce = randomBytes(NONCE_BYTES);
      const cipher = createCipheriv('aes-256-gcm', current.key, nonce);
      cipher.setAAD(Buffer.from(current.id));
      const plain = temporal.api.common.v1.Payload.encode(p).finish();
      const data = Buffer.concat([nonce, cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
      return {
        metadata: {
          encoding: textEncoder.encode(ENCRYPTED_ENCODING),
          [KEY_ID_METADATA]: textEncoder.encode(current.id),
        },
        data,
      };
    });
  }

  async decode(payloads: Payload[]): Promise<Payload[]> {
    const out: Payload[] = [];
    for (const p of payloads) out.push(await this.decodeOne(p));
    return out;
  }

  private async decodeOne(p: Payload): Promise<Payload> {
    const encoding = encodingOf(p);
    if (encoding !== ENCRYPTED_ENCODING) {
      if (this.opts.refusePlaintext && this.keys.size > 0 && encoding !== KEY_DELIVERY_ENCODING)
        throw new RunfleetError(
          'Unauthorized',
          `refused a payload in clear (${encoding ?? 'no encoding'}): this process takes only payloads encrypted with its keys`,
        );
      return p;
    }
    const rawId = p.metadata?.[KEY_ID_METADATA];
    if (!rawId) throw new RunfleetError('Internal', 'an encrypted payload has no encryption-key-id');
    const id = textDecoder.decode(rawId);
    // A runner missing a key (re-keyed or rotated since it registered) asks the fleet once.
    const key = this.keys.get(id) ?? (await this.keys.fetchMissing(id));
    if (!key) {
      throw new RunfleetError(
        'InvalidConfig',
        `this process has no data key ${id}; is the runner registered / is encryption.keyFile set?`,
      );
    }
    const data = Buffer.from(p.data ?? new Uint8Array());
    if (data.length < NONCE_BYTES + TAG_BYTES)
      throw new RunfleetError('Internal', `an encrypted payload (key ${id}) is truncated`);
    const decipher = createDecipheriv('aes-256-gcm', key.key, data.subarray(0, NONCE_BYTES));
    decipher.setAAD(Buffer.from(id));
    decipher.setAuthTag(data.subarray(data.length - TAG_BYTES));
    let plain: Buffer;
    try {
      plain = Buffer.concat([decipher.update(data.subarray(NONCE_BYTES, data.length - TAG_BYTES)), decipher.final()]);
    } catch {
      throw new RunfleetError('Internal', `an encrypted payload (key ${id}) failed authentication: it was altered`);
    }
    const decoded = temporal.api.common.v1.Payload.decode(plain);
    return { metadata: decoded.metadata ?? {}, data: decoded.data ?? new Uint8Array() };
  }
}

function encodingOf(p: Payload): string | undefined {
  const e = p.metadata?.['encoding'];
  return e ? textDecoder.decode(e) : undefined;
}
