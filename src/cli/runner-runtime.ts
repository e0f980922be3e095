/**
 * What a runner process needs to talk to Temporal: a key ring that is empty until the fleet
 * hands over the data keys (so its register request travels in clear and everything after is
 * encrypted), and a worker connection plus a client made afresh on every (re)connect.
 */
import { Client, Connection } from '@temporalio/client';
import type { DataConverter } from '@temporalio/common';
import { createDataConverter } from '../codec';
import { KeyRing } from '../codec/keys';
import type { Config } from '../config';
import { connectionOptions } from '../connection';
import type { Connected } from '../../workers/runner-agent';
import { connectWorker } from './runtime';

export function runnerDataConverter(): { keys: KeyRing; dataConverter: DataConverter } {
  const keys = new KeyRing();
  // Everything a runner is sent comes encrypted by a control worker: a payload in clear is forged.
  return { keys, dataConverter: createDataConverter({ keys, refusePlaintext: true }) };
}

export async function openConnections(
  config: Config,
  env: Readonly<Record<string, string | undefined>>,
  dataConverter: DataConverter,
): Promise<Connected> {
  // TLS, mTLS and API keys come from Temporal's standard client configuration.
  const { namespace: _namespace, ...options } = connectionOptions(config, env);
  const connection = await connectWorker({ ...options, namespace: config.temporal.namespace });
  let clientConnection: Connection;
  try {
    clientConnection = await Connection.connect({ ...options, connectTimeout: config.temporal.connectTimeoutMs });
  } catch (err) {
    await connection.close().catch(() => undefined);
    throw err;
  }
  const client = new Client({ connection: clientConnection, namespace: config.temporal.namespace, dataConverter });
  return {
    connection,
    client,
    async close() {
      await clientConnection.close().catch(() => undefined);
      await connection.close().catch(() => undefined);
    },
  };
}
