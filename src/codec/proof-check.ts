/**
 * The proof codec: verifies a runner's execution result or reservation answer where the worker
 * decodes it, with node:crypto, before it enters the workflow sandbox, which can only verify in
 * plain JavaScript (src/security/ed25519-verify.ts, about 0.45 ms an answer, a third of a big
 * run's workflow CPU). The run then compares what the answer says it signed with the execution or
 * reservation it expects, and the key it names with the runner's registered key (`checkedSigner`
 * and `runnerProofProblem` in src/security/runner-proof.ts).
 *
 * Decoding, it strips `PROOF_CHECKED_METADATA` from every payload (nobody but this codec sets it),
 * then, for a payload a Runfleet converter marked as stating what its proof covers
 * (`RUNNER_STATEMENT_METADATA`), verifies the proof over the statement the payload states with the
 * key the payload names, and sets the metadata when it holds. It is last to decode (first in
 * `payloadCodecs`), after decryption: whatever a payload carried inside its ciphertext is stripped
 * too. Encoding, it only strips the mark. What it decides is a function of the payload's bytes
 * alone, so a replay decides the same. A worker without it verifies in the sandbox: OpenSSL's
 * check and ed25519-verify.ts are both RFC 8032's cofactorless one and agree on every signature
 * node:crypto makes; they could part only on a key or signature crafted off the curve's canonical
 * encodings, which the runner holding the key alone could make, about its own answers.
 */
import type { KeyObject } from 'node:crypto';
import { verify } from 'node:crypto';
import { METADATA_ENCODING_KEY, encodingTypes, type Payload, type PayloadCodec } from '@temporalio/common';
import { publicKeyObject } from '../security/operator';
import { statedMessageOf, runnerStatementBytes } from '../security/runner-proof';
import { fromBase64 } from '../security/statements';
import { PROOF_CHECKED_METADATA, RUNNER_STATEMENT_METADATA, proofCheckedMark } from './payload-converter';

/** An answer is a few hundred bytes; larger ones (many outputs, leases) are left to the sandbox. */
const MAX_CHECKED_BYTES = 64 * 1024;
/** Signing keys kept as key objects (a worker meets its fleet's runners); the oldest goes first. */
const MAX_KEYS = 1_000;

const textDecoder = new TextDecoder();

export class ProofCheckCodec implements PayloadCodec {
  private readonly keys = new Map<string, KeyObject | null>();

  async encode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map(unmarked);
  }

  async decode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((p) => this.checked(unmarked(p)));
  }

  /** The payload, marked when it states a message whose proof the key it names verifies. */
  private checked(p: Payload): Payload {
    const metadata = p.metadata;
    if (metadata?.[RUNNER_STATEMENT_METADATA] === undefined) return p;
    const encoding = metadata[METADATA_ENCODING_KEY];
    if (!encoding || textDecoder.decode(encoding) !== encodingTypes.METADATA_ENCODING_JSON) return p;
    if (!p.data || p.data.length > MAX_CHECKED_BYTES) return p;
    let stated: ReturnType<typeof statedMessageOf>;
    try {
      stated = statedMessageOf(JSON.parse(textDecoder.decode(p.data)));
    } catch {
      return p;
    }
    if (!stated) return p;
    const key = this.key(stated.signer);
    const signature = fromBase64(stated.proof);
    if (!key || signature?.length !== 64) return p;
    let valid = false;
    try {
      valid = verify(null, runnerStatementBytes(stated.message), key, signature);
    } catch {
      valid = false;
    }
    return valid ? { ...p, metadata: { ...metadata, [PROOF_CHECKED_METADATA]: proofCheckedMark() } } : p;
  }

  private key(signer: string): KeyObject | null {
    let key = this.keys.get(signer);
    if (key !== undefined) return key;
    const raw = fromBase64(signer);
    try {
      key = raw?.length === 32 ? publicKeyObject(raw) : null;
    } catch {
      key = null;
    }
    this.keys.set(signer, key);
    if (this.keys.size > MAX_KEYS) this.keys.delete(this.keys.keys().next().value as string);
    return key;
  }
}

/** The payload without the codec's mark, however it came by it. */
function unmarked(p: Payload): Payload {
  if (p.metadata?.[PROOF_CHECKED_METADATA] === undefined) return p;
  const { [PROOF_CHECKED_METADATA]: _dropped, ...metadata } = p.metadata;
  return { ...p, metadata };
}
