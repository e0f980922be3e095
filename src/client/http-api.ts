/**
 * Temporal's HTTP API (the frontend's `httpPort`, 7243 by convention; `temporal server start-dev
 * --http-port`): the same WorkflowService calls as gRPC, as JSON. `run list` uses it because it
 * needs no gRPC stack, a fraction of the start-up (bench/cli.ts).
 *
 * It goes with the gRPC connection's own settings: TLS (server CA, client certificate, server
 * name) and the API key as `Authorization: Bearer`. Payloads come in their full form
 * (`noPayloadShorthand`), so a caller decodes them as a worker would. Errors are Runfleet's.
 */
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { RunfleetError } from '../errors';
import type { TemporalConnectionOptions } from '../connection';

/** The answers we read are small; a bigger body is refused instead of buffered. */
const MAX_BODY_BYTES = 16 * 1024 * 1024;

export interface HttpApiOptions {
  /** `host:port` of the HTTP API. */
  httpAddress: string;
  /** The gRPC connection's settings: namespace, TLS, API key. */
  connection: TemporalConnectionOptions;
  /** How long connecting may take (`temporal.connectTimeoutMs`). */
  connectTimeoutMs: number;
  /** How long a call may take in all, unless it says otherwise. Default 30 s. */
  timeoutMs?: number;
}

const DEFAULT_CALL_TIMEOUT_MS = 30_000;

export class TemporalHttpApi {
  private readonly base: string;

  constructor(private readonly opts: HttpApiOptions) {
    this.base = `/api/v1/namespaces/${encodeURIComponent(opts.connection.namespace)}`;
  }

  /** GET `<namespace>/<path>?<query>`, with full payloads (no shorthand). */
  get(path: string, query: Record<string, string | number | undefined> = {}): Promise<unknown> {
    const params = new URLSearchParams({ noPayloadShorthand: 'true' });
    for (const [k, v] of Object.entries(query)) if (v !== undefined) params.set(k, String(v));
    return this.call(`${this.base}/${path}?${params.toString()}`);
  }

  private call(path: string): Promise<unknown> {
    const { connection, httpAddress } = this.opts;
    const timeoutMs = this.opts.timeoutMs ?? DEFAULT_CALL_TIMEOUT_MS;
    const colon = httpAddress.lastIndexOf(':');
    const host = httpAddress.slice(0, colon).replace(/^\[(.*)\]$/, '$1');
    const port = Number(httpAddress.slice(colon + 1));
    const headers: Record<string, string> = { accept: 'application/json' };
    if (connection.apiKey) headers['authorization'] = `Bearer ${connection.apiKey}`;
    const tls = connection.tls;
    const where = `Temporal's HTTP API at ${httpAddress} (RUNFLEET_HTTP_ADDRESS)`;
    return new Promise((resolve, reject) => {
      const onResponse = (res: IncomingMessage) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > MAX_BODY_BYTES) {
            res.destroy(
              new RunfleetError('ComponentUnavailable', `${where} answered more than ${MAX_BODY_BYTES} bytes`),
            );
            return;
          }
          chunks.push(chunk);
        });
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: unknown;
          try {
            json = text.length === 0 ? {} : JSON.parse(text);
          } catch {
            reject(
              new RunfleetError(
                'ComponentUnavailable',
                `${where} answered ${res.statusCode} with no JSON: ${printable(text.slice(0, 200))}`,
              ),
            );
            return;
          }
          const status = res.statusCode ?? 0;
          if (status >= 200 && status < 300) resolve(json);
          else reject(httpError(status, json, where));
        });
      };
      const common = { host, port, method: 'GET', path, headers };
      const req =
        tls === undefined || tls === false
          ? httpRequest(common, onResponse)
          : httpsRequest(
              {
                ...common,
                ...(typeof tls === 'object'
                  ? {
                      ...(tls.serverRootCACertificate ? { ca: tls.serverRootCACertificate } : {}),
                      ...(tls.clientCertPair ? { cert: tls.clientCertPair.crt, key: tls.clientCertPair.key } : {}),
                      ...(tls.serverNameOverride ? { servername: tls.serverNameOverride } : {}),
                    }
                  : {}),
              },
              onResponse,
            );
      const timer = setTimeout(
        () => req.destroy(new RunfleetError('ServerUnreachable', `${where} did not answer in ${timeoutMs} ms`)),
        timeoutMs,
      );
      req.on('socket', (socket) => {
        if (!socket.connecting) return;
        const connectTimer = setTimeout(
          () =>
            req.destroy(
              new RunfleetError(
                'ServerUnreachable',
                `cannot reach ${where}: no connection in ${this.opts.connectTimeoutMs} ms`,
              ),
            ),
          this.opts.connectTimeoutMs,
        );
        socket.once('connect', () => clearTimeout(connectTimer));
        socket.once('close', () => clearTimeout(connectTimer));
      });
      req.on('close', () => clearTimeout(timer));
      req.on('error', (err) =>
        reject(
          err instanceof RunfleetError
            ? err
            : new RunfleetError('ServerUnreachable', `cannot reach ${where}: ${err.message}`, { cause: err }),
        ),
      );
      req.end();
    });
  }
}

/**
 * Text from the server as it may be printed: control characters (a terminal's escape sequences)
 * shown as `?`, and at most 300 characters. The network is untrusted.
 */
export function printable(text: string): string {
  const shown = text.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?');
  return shown.length > 300 ? `${shown.slice(0, 300)}...` : shown;
}

/** An error answer (a google.rpc.Status as JSON: code, message) as a Runfleet error. */
function httpError(status: number, json: unknown, where: string): RunfleetError {
  const message =
    json !== null && typeof json === 'object' && typeof (json as { message?: unknown }).message === 'string'
      ? printable((json as { message: string }).message)
      : `HTTP ${status}`;
  if (status === 404) return new RunfleetError('NotFound', message);
  if (status === 401 || status === 403) return new RunfleetError('Unauthorized', `${where}: ${message}`);
  if (status === 400) return new RunfleetError('InvalidArgument', `${where}: ${message}`);
  if (status === 503 || status === 502 || status === 504)
    return new RunfleetError('ServerUnreachable', `${where}: ${message}`);
  return new RunfleetError('ComponentUnavailable', `${where} answered ${status}: ${message}`);
}
