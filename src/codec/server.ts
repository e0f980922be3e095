/**
 * A codec server: Temporal's remote codec protocol over HTTP, so the Web UI and
 * `temporal workflow show --codec-endpoint URL --codec-auth 'Bearer ...'` can show encrypted
 * payloads to the people allowed to read them, and to nobody else.
 *
 * POST `.../decode` (and `.../encode` when `allowEncode`) take and answer
 * `{ "payloads": [Payload as proto3 JSON] }` (metadata values and data in base64); only the last
 * path segment counts, so the server can be mounted under any prefix.
 *
 * Every request, in this order: its `Host` must be an allowed name (421 otherwise: a DNS-rebinding
 * page cannot reach a loopback server under its own name); a browser's `Origin`, when sent, must
 * be an allowed origin (403), and only those get CORS headers; then `Authorization: Bearer` must
 * carry an accepted token (401, see server-auth.ts); the body is JSON, at most `maxBodyBytes`
 * (413), and what its payloads decode to at most `maxDecodedBytes` in all (413).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Payload, PayloadCodec } from '@temporalio/common';
import { RunfleetError } from '../errors';
import { InflateLimitError, MAX_INFLATED_BYTES } from './compression';
import type { Authenticator } from './server-auth';

/**
 * A request's body. The Web UI and the temporal CLI send the payloads of one history page: under
 * Temporal's 4 MiB gRPC message limit, plus a third for base64 and the JSON around it.
 */
export const DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024;
/**
 * What one request's payloads may decode to in all: twice what one payload may inflate to, so
 * the largest legitimate payload decodes with room, and a request of bombs stops at this.
 */
export const DEFAULT_MAX_DECODED_BYTES = 2 * MAX_INFLATED_BYTES;
/** The names a loopback server answers to; anything else is a misdirected (rebound) request. */
export const LOOPBACK_HOSTS = ['localhost', '127.0.0.1', '[::1]'] as const;
/** A client that takes longer than this to send its request is cut off (a slow-body attack). */
const REQUEST_TIMEOUT_MS = 30_000;

export interface CodecServerOptions {
  /** Applied in order to encode and in reverse to decode, as the SDK does. */
  codecs: PayloadCodec[];
  /** Checks each request's `Authorization`; `null` serves without (loopback use only, see the CLI). */
  auth: Authenticator | null;
  /** Default 8888. 0 picks a free port. */
  port?: number;
  /** Default 127.0.0.1: decoded payloads are secrets. */
  host?: string;
  /**
   * Host names (without port) requests may be addressed to. Default: the loopback names, plus
   * the listen address when it is a specific one.
   */
  allowedHosts?: string[];
  /** Origins (Web UIs) allowed to call it from a browser. Default: none. */
  origins?: string[];
  /** Serve `/encode` (anyone allowed could then make payloads workers accept). Default false. */
  allowEncode?: boolean;
  /** Default `DEFAULT_MAX_BODY_BYTES`. */
  maxBodyBytes?: number;
  /** Default `DEFAULT_MAX_DECODED_BYTES`. */
  maxDecodedBytes?: number;
  /** Called for each request that failed, with why. */
  onError?: (err: unknown) => void;
  /** Called for each request refused (401, 403, 413, 421), with its status and why. */
  onRefused?: (status: number, why: string, req: IncomingMessage) => void;
}

export interface CodecServer {
  server: Server;
  /** `http://host:port`: what `--codec-endpoint` and the Web UI's codec setting take. */
  url: string;
  close(): Promise<void>;
}

interface JsonPayload {
  metadata?: Record<string, string>;
  data?: string;
}

/** A request refused with a status and a reason for the caller. */
class Refusal extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export async function startCodecServer(opts: CodecServerOptions): Promise<CodecServer> {
  const listenHost = opts.host ?? '127.0.0.1';
  const origins = new Set(opts.origins ?? []);
  const allowedHosts = new Set(
    (opts.allowedHosts ?? [...LOOPBACK_HOSTS, ...(isWildcard(listenHost) ? [] : [bracketed(listenHost)])]).map((h) =>
      h.toLowerCase(),
    ),
  );
  const maxBodyBytes = opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const maxDecodedBytes = opts.maxDecodedBytes ?? DEFAULT_MAX_DECODED_BYTES;

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (err instanceof Refusal) {
        opts.onRefused?.(err.status, err.message, req);
        // Node discards the unread rest of the body (so the client reads this answer, not a reset),
        // within REQUEST_TIMEOUT_MS; the connection is not kept for another request.
        if (err.status === 413) res.setHeader('Connection', 'close');
        if (!res.headersSent) reply(res, err.status, { error: err.message });
        return;
      }
      opts.onError?.(err);
      if (res.headersSent) res.destroy();
      else if (err instanceof RunfleetError) reply(res, 400, { error: err.message });
      else reply(res, 500, { error: 'the codec failed; see the codec server log' });
    });
  });
  server.requestTimeout = REQUEST_TIMEOUT_MS;

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const host = hostName(req.headers.host);
    if (host === null || !allowedHosts.has(host))
      throw new Refusal(
        421,
        `Host ${JSON.stringify(req.headers.host ?? '')} is not served here (allowed: ${[...allowedHosts].join(', ')}; --allowed-host)`,
      );
    const origin = req.headers.origin;
    if (origin !== undefined) {
      if (!origins.has(origin)) throw new Refusal(403, `origin ${origin} is not allowed (--origin)`);
      res.setHeader('Access-Control-Allow-Origin', origin);
      res.setHeader('Access-Control-Allow-Credentials', 'true');
      res.setHeader('Vary', 'Origin');
    }
    res.setHeader('Cache-Control', 'no-store');
    if (req.method === 'OPTIONS') {
      // A preflight carries no credentials by the fetch standard; the request that follows does.
      res.setHeader('Access-Control-Allow-Methods', 'POST, OPTIONS');
      res.setHeader('Access-Control-Allow-Headers', 'Content-Type, X-Namespace, Authorization');
      res.setHeader('Access-Control-Max-Age', '600');
      res.writeHead(204).end();
      return;
    }
    const action = new URL(req.url ?? '/', 'http://codec').pathname.replace(/\/+$/, '').split('/').pop();
    if (action !== 'encode' && action !== 'decode') return reply(res, 404, { error: 'POST /decode' });
    if (req.method !== 'POST') return reply(res, 405, { error: `${req.method} is not allowed; POST` });
    if (opts.auth) {
      const result = opts.auth(req.headers.authorization);
      if (!result.ok) {
        res.setHeader('WWW-Authenticate', 'Bearer realm="runfleet-codec"');
        throw new Refusal(401, `unauthorized: ${result.why}`);
      }
    }
    if (action === 'encode' && opts.allowEncode !== true)
      throw new Refusal(403, '/encode is off on this codec server (--allow-encode turns it on)');
    // A browser can send text/plain across origins without a preflight; JSON needs one.
    if (!/^application\/json\b/i.test(req.headers['content-type'] ?? ''))
      return reply(res, 415, { error: 'the body must be application/json' });

    let body: { payloads?: unknown };
    try {
      body = JSON.parse(await readBody(req, maxBodyBytes)) as { payloads?: unknown };
    } catch (err) {
      if (err instanceof Refusal) throw err;
      return reply(res, 400, { error: `the body is not JSON: ${(err as Error).message}` });
    }
    if (!Array.isArray(body.payloads)) return reply(res, 400, { error: 'the body must be {"payloads": [...]}' });
    const payloads = (body.payloads as JsonPayload[]).map(fromJson);
    if (action === 'encode') {
      let encoded = payloads;
      for (const c of opts.codecs) encoded = await c.encode(encoded);
      return reply(res, 200, { payloads: encoded.map(toJson) });
    }
    // One payload at a time, counting: the request stops at its budget, not after it.
    const decoded: Payload[] = [];
    let total = 0;
    for (const payload of payloads) {
      let one = [payload];
      try {
        for (const c of [...opts.codecs].reverse()) one = await c.decode(one);
      } catch (err) {
        if (err instanceof InflateLimitError) throw new Refusal(413, err.message);
        throw err;
      }
      for (const p of one) total += (p.data?.length ?? 0) + 64;
      if (total > maxDecodedBytes)
        throw new Refusal(413, `the payloads decode to more than ${maxDecodedBytes} bytes in all: refused`);
      decoded.push(...one);
    }
    reply(res, 200, { payloads: decoded.map(toJson) });
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 8888, listenHost, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    server,
    url: `http://${host}:${address.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** Whether `host` is a loopback address or name: the only place a server without auth may listen. */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host === '[::1]' || /^127(\.\d{1,3}){3}$/.test(host);
}

function isWildcard(host: string): boolean {
  return host === '0.0.0.0' || host === '::' || host === '[::]';
}

function bracketed(host: string): string {
  return host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
}

/** The name of a Host header, lower-cased and without its port; `null` when absent or malformed. */
function hostName(header: string | undefined): string | null {
  if (!header) return null;
  const m = /^(\[[0-9a-fA-F:.]+\]|[^:[\]]+)(?::\d{1,5})?$/.exec(header.trim());
  return m ? (m[1] as string).toLowerCase() : null;
}

function reply(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'Content-Type': 'application/json' }).end(JSON.stringify(body));
}

function readBody(req: IncomingMessage, limit: number): Promise<string> {
  const declared = Number(req.headers['content-length']);
  if (declared > limit) return Promise.reject(tooLarge(limit));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (c: Buffer) => {
      size += c.length;
      if (size <= limit) return void chunks.push(c);
      req.off('data', onData);
      chunks.length = 0;
      reject(tooLarge(limit));
    };
    req.on('data', onData);
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function tooLarge(limit: number): Refusal {
  return new Refusal(413, `the body is over ${limit} bytes: refused`);
}

function fromJson(p: JsonPayload): Payload {
  const metadata: Record<string, Uint8Array> = {};
  for (const [k, v] of Object.entries(p.metadata ?? {}))
    // JSON.parse makes `__proto__` an own key; assigned, it would replace the object's prototype.
    if (k !== '__proto__') metadata[k] = Buffer.from(v, 'base64');
  return { metadata, data: Buffer.from(p.data ?? '', 'base64') };
}

function toJson(p: Payload): JsonPayload {
  const metadata: Record<string, string> = {};
  for (const [k, v] of Object.entries(p.metadata ?? {}))
    metadata[k] = Buffer.from(v ?? new Uint8Array()).toString('base64');
  return { metadata, data: Buffer.from(p.data ?? new Uint8Array()).toString('base64') };
}
