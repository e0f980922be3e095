/** Raw HTTP requests for tests that must choose every header (Host included), which fetch does not allow. */
import { request } from 'node:http';

export interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

type RawOptions = { method?: string; headers?: Record<string, string>; body?: string | Buffer };

/**
 * A server that refuses a large body answers and closes while the body is still being sent; the
 * client then sometimes fails the write (EPIPE, ECONNRESET) before it has read the answer. Such a
 * request is sent again, up to three times in all, for the answer.
 */
export async function rawRequest(url: string, opts: RawOptions = {}): Promise<RawResponse> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await rawRequestOnce(url, opts);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (attempt >= 3 || (code !== 'EPIPE' && code !== 'ECONNRESET')) throw err;
    }
  }
}

/**
 * Bodies this large are held back after the headers for a moment: a server that refuses them on
 * their declared length answers at once, and the answer is read before any of the body is sent
 * (what `Expect: 100-continue` does, without relying on the server's support for it).
 */
const EARLY_ANSWER_BYTES = 1024 * 1024;
const EARLY_ANSWER_WAIT_MS = 1_000;

function rawRequestOnce(url: string, opts: RawOptions): Promise<RawResponse> {
  const u = new URL(url);
  const body =
    opts.body === undefined ? undefined : Buffer.isBuffer(opts.body) ? opts.body : Buffer.from(opts.body, 'utf8');
  return new Promise((resolve, reject) => {
    let answered = false;
    const req = request(
      {
        host: u.hostname.replace(/^\[|\]$/g, ''),
        port: u.port,
        path: u.pathname,
        method: opts.method ?? 'POST',
        headers: {
          'content-type': 'application/json',
          ...(body !== undefined ? { 'content-length': String(body.length) } : {}),
          ...opts.headers,
        },
      },
      (res) => {
        answered = true;
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') });
          // Answered before the body went: it never will.
          if (!req.writableEnded) req.destroy();
        });
        res.on('error', reject);
      },
    );
    // A server that refuses a large body answers and closes while it is still being sent.
    req.on('error', reject);
    if (body === undefined || body.length < EARLY_ANSWER_BYTES) {
      req.end(body);
      return;
    }
    req.flushHeaders();
    setTimeout(() => {
      if (!answered) req.end(body);
    }, EARLY_ANSWER_WAIT_MS);
  });
}
