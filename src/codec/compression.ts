/**
 * A payload codec that gzips large payloads. Temporal refuses payloads over 2 MiB and warns
 * from 512 KiB; a 10,000-task run's spec and state are several MiB of very repetitive JSON that
 * compress 10-20x. Small payloads stay plain JSON, so ordinary runs read as they are in the Web
 * UI and with `temporal workflow show`; a plain payload (from `temporal workflow start`) always
 * decodes.
 *
 * Every Runfleet client and worker runs it before the encryption codec (`createDataConverter` in
 * index.ts): compressed first, since ciphertext does not compress.
 */
import type { DataConverter, Payload, PayloadCodec } from '@temporalio/common';
import { gunzipSync, gzipSync } from 'node:zlib';

const GZIP = 'binary/gzip';
const ORIGINAL = 'runfleet-original-encoding';
const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder();

export class CompressionCodec implements PayloadCodec {
  /** Payloads of at least this many bytes are compressed. */
  constructor(private readonly thresholdBytes = 64 * 1024) {}

  async encode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((p) => {
      if (!p.data || p.data.length < this.thresholdBytes) return p;
      const metadata = { ...(p.metadata ?? {}) };
      const original = metadata['encoding'];
      if (original) metadata[ORIGINAL] = original;
      metadata['encoding'] = textEncoder.encode(GZIP);
      return { metadata, data: gzipSync(p.data) };
    });
  }

  async decode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((p) => {
      const encoding = p.metadata?.['encoding'];
      if (!encoding || textDecoder.decode(encoding) !== GZIP) return p;
      const metadata = { ...(p.metadata ?? {}) };
      const original = metadata[ORIGINAL];
      delete metadata[ORIGINAL];
      if (original) metadata['encoding'] = original;
      else delete metadata['encoding'];
      return { metadata, data: gunzipSync(p.data ?? new Uint8Array()) };
    });
  }
}

/**
 * Compression only, without Runfleet's payload converter or encryption.
 * @deprecated Use `createDataConverter({ keys })` from `src/codec`; kept until workers/runner.ts switches.
 */
export const dataConverter: DataConverter = { payloadCodecs: [new CompressionCodec()] };
