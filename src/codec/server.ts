/**
 * A codec server: Temporal's remote codec protocol over HTTP, so the Web UI and
 * `temporal workflow show --codec-endpoint URL` can show encrypted payloads to whoever may reach
 * it (bind it to localhost or put it behind your own auth: anyone who reaches it can decode).
 *
 * POST `.../encode` and `.../decode` take and answer `{ "payloads": [Payload as proto3 JSON] }`
 * (metadata values and data in base64); only the last path segment counts, so the server can be
 * mounted under any prefix. CORS lets the Web UI's origin call it, with `X-Namespace` and
 * credentials, preflight included.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Payload, PayloadCodec } from '@temporalio/common';

/** Payloads of one request: far above what the UI sends (a history page), far below a memory problem. */
const MAX_BODY_BYTES = 64 * 1024 * 1024;

export interface CodecServerOptions {
  /** Applied in order to encode and in reverse to decode, as the SDK does. */
  codecs: PayloadCodec[];
  /** Default 8888. 0 picks a free port. */
  port?: number;
  /** Default 127.0.0.1: decoded payloads are secrets. */
  host?: string;
  /** Origins allowed by CORS. Default: the local Web UI, http://localhost:8233. */
  origins?: string[];
  /** Called for each request that failed, with why. */
  onError?: (err: unknown) => void;
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

export async function startCodecServer(opts: CodecServerOptions): Promise<CodecServer> {
  const origins = new Set(opts.origins ?? ['http://localhost:8233']);
  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      opts.onError?.(err);
      if (!res.headersSent) reply(res, 500, { error: err instanceof Error ? err.message : String(err) });
      else res.destroy();
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const origin = req.headers.origin;
    if (origin && origins.has(origin)) {
      res.setHeader('Access-Control-Allow-Origin', origin);
      res.setHeader('Access-Control-Allow-Credentials', 'true');
      res.setHeader('Vary', 'Origin');
    }
    if (req.method === 'OPTIONS') {
      res.setHeader('Access-Control-Allow-Methods', 'POST, OPTIONS');
      res.setHeader('Access-Control-Allow-Headers', 'Content-Type, X-Namespace, Authorization');
      res.setHeader('Access-Control-Max-Age', '600');
      res.writeHead(204).end();
      return;
    }
    const action = new URL(req.url ?? '/', 'http://codec').pathname.replace(/\/+$/, '').split('/').pop();
    if (action !== 'encode' && action !== 'decode') return reply(res, 404, { error: 'POST /encode or /decode' });
    if (req.method !== 'POST') return reply(res, 405, { error: `${req.method} is not allowed; POST` });

    let body: { payloads?: unknown };
    try {
      body = JSON.parse(await readBody(req)) as { payloads?: unknown };
    } catch (err) {
      return reply(res, 400, { error: `the body is not JSON: ${(err as Error).message}` });
    }
    if (!Array.isArray(body.payloads)) return reply(res, 400, { error: 'the body must be {"payloads": [...]}' });
    let payloads = (body.payloads as JsonPayload[]).map(fromJson);
    if (action === 'encode') for (const c of opts.codecs) payloads = await c.encode(payloads);
    else for (const c of [...opts.codecs].reverse()) payloads = await c.decode(payloads);
    reply(res, 200, { payloads: payloads.map(toJson) });
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 8888, opts.host ?? '127.0.0.1', () => {
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

function reply(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'Content-Type': 'application/json' }).end(JSON.stringify(body));
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) {
        reject(new Error(`the body is over ${MAX_BODY_BYTES} bytes`));
        req.destroy();
      } else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function fromJson(p: JsonPayload): Payload {
  const metadata: Record<string, Uint8Array> = {};
  for (const [k, v] of Object.entries(p.metadata ?? {})) metadata[k] = Buffer.from(v, 'base64');
  return { metadata, data: Buffer.from(p.data ?? '', 'base64') };
}

function toJson(p: Payload): JsonPayload {
  const metadata: Record<string, string> = {};
  for (const [k, v] of Object.entries(p.metadata ?? {}))
    metadata[k] = Buffer.from(v ?? new Uint8Array()).toString('base64');
  return { metadata, data: Buffer.from(p.data ?? new Uint8Array()).toString('base64') };
}
