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
import { RunfleetError } from '../errors';
import { LIMITS } from '../spec/schema';

const GZIP = 'binary/gzip';
const ORIGINAL = 'runfleet-original-encoding';
const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder();

/**
 * The most one payload may inflate to. The largest legitimate payload is a run's continue-as-new
 * input: its spec (at most `LIMITS.maxSpecBytes`, 4 MiB) and the state of up to 10,000 tasks
 * (~3 MiB). Eight times the spec limit leaves a 4x margin over that, and stops a gzip bomb (510 KiB
 * that inflates to 512 MiB) at 32 MiB: zlib stops there, so no more is ever allocated.
 */
export const MAX_INFLATED_BYTES = 8 * LIMITS.maxSpecBytes;

/** A compressed payload inflates past the codec's bound: refused, nothing beyond the bound is kept. */
export class InflateLimitError extends RunfleetError {
  constructor(readonly limitBytes: number) {
    super(
      'InvalidArgument',
      `a compressed payload inflates to more than ${limitBytes} bytes, the most a Runfleet payload can be: refused (a decompression bomb?)`,
    );
    this.name = 'InflateLimitError';
  }
}

export class CompressionCodec implements PayloadCodec {
  constructor(
    /** Payloads of at least this many bytes are compressed. */
    private readonly thresholdBytes = 64 * 1024,
    /** A payload that inflates past this fails with `InflateLimitError`. */
    private readonly maxInflatedBytes = MAX_INFLATED_BYTES,
  ) {}

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
      return { metadata, data: inflate(p.data ?? new Uint8Array(), this.maxInflatedBytes) };
    });
  }
}

/** Gunzips at most `limit` bytes: zlib stops at `maxOutputLength`, so a bomb never allocates more. */
function inflate(data: Uint8Array, limit: number): Buffer {
  try {
    return gunzipSync(data, { maxOutputLength: limit });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') throw new InflateLimitError(limit);
    throw err;
  }
}

/**
 * Compression only, without Runfleet's payload converter or encryption.
 * @deprecated Use `createDataConverter({ keys })` from `src/codec`; kept until workers/runner.ts switches.
 */
export const dataConverter: DataConverter = { payloadCodecs: [new CompressionCodec()] };
