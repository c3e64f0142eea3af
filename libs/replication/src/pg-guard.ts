import type pg from 'pg';

const ignore = (): void => undefined;

/**
 * pg emits 'error' on a client whose session the server ended (a crash, a failover,
 * pg_terminate_backend), even between queries and even while one is pending, and an
 * 'error' event nobody listens to is an uncaught exception that ends the process. The
 * failure still reaches the caller through the query it awaits or the next one, which is
 * where each loop retries; this listener only keeps the event from killing the agent.
 * pg-pool drops its own listener while a client is checked out, so guard those too.
 * Idempotent: a pooled client checked out again does not collect listeners.
 */
export function guardClient<T extends pg.ClientBase>(client: T): T {
  if (!client.listeners('error').includes(ignore)) client.on('error', ignore);
  return client;
}
