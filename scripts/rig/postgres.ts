/**
 * A private PostgreSQL server from Debian's packages: its own data directory
 * and loopback port, `track_commit_timestamp=on` (SpiceDB's Watch needs it),
 * run as the unprivileged `postgres` user when we are root (PostgreSQL
 * refuses root). Never the system's service.
 */
import { chownSync, mkdirSync, writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import path from 'node:path';
import { component } from './components';
import { freePort, waitFor } from './net';
import { ManagedProcess, run } from './process';
import { makeWorkDir } from './workdir';

export interface Postgres {
  host: string;
  port: number;
  /** Connection URI for `database` (superuser, no password, loopback only). */
  uri(database: string): string;
  /** Creates a database with a fresh name and returns its URI. */
  createDatabase(name: string): Promise<string>;
  stop(): Promise<void>;
}

const SUPERUSER = 'spicedb';

export async function startPostgres(opts: { host?: string } = {}): Promise<Postgres> {
  const bin = component('POSTGRES_BIN_DIR');
  const host = opts.host ?? '127.0.0.1';
  const port = await freePort(host);
  const work = makeWorkDir('pg');
  const data = path.join(work.dir, 'data');
  mkdirSync(data, { mode: 0o700 });
  const runAs = userInfo().uid === 0 ? await idOf('postgres') : undefined;
  if (runAs) {
    chownSync(work.dir, runAs.uid, runAs.gid);
    chownSync(data, runAs.uid, runAs.gid);
  }
  await run({
    name: 'initdb',
    command: path.join(bin, 'initdb'),
    args: ['-D', data, '-U', SUPERUSER, '--auth=trust', '--no-sync', '-E', 'UTF8', '--locale=C'],
    runAs,
    cwd: work.dir,
  });
  writeFileSync(
    path.join(data, 'postgresql.auto.conf'),
    [
      `listen_addresses = '${host}'`,
      `port = ${port}`,
      `unix_socket_directories = '${work.dir}'`,
      'track_commit_timestamp = on',
      'fsync = off',
      'synchronous_commit = off',
      'full_page_writes = off',
      'max_connections = 300',
      '',
    ].join('\n'),
  );
  if (runAs) chownSync(path.join(data, 'postgresql.auto.conf'), runAs.uid, runAs.gid);
  const proc = new ManagedProcess({ name: 'postgres', command: path.join(bin, 'postgres'), args: ['-D', data], runAs, cwd: work.dir });
  const uri = (database: string): string => `postgres://${SUPERUSER}@${host}:${port}/${database}?sslmode=disable`;
  const psql = (sql: string): Promise<string> =>
    run({ name: 'psql', command: path.join(bin, 'psql'), args: [uri('postgres'), '-v', 'ON_ERROR_STOP=1', '-qAtc', sql] });
  await waitFor(
    async () => (await psql('select 1')).trim() === '1',
    { what: `PostgreSQL on ${host}:${port}`, timeoutMs: 30000, abortIf: () => proc.assertRunning() },
  );
  return {
    host,
    port,
    uri,
    async createDatabase(name: string) {
      if (!/^[a-z][a-z0-9_]{0,62}$/.test(name)) throw new Error(`bad database name ${name}`);
      await psql(`create database ${name}`);
      return uri(name);
    },
    async stop() {
      // SIGINT is PostgreSQL's "fast" shutdown.
      await proc.stop('SIGINT', 10000);
      work.remove();
    },
  };
}

async function idOf(user: string): Promise<{ uid: number; gid: number }> {
  const [uid, gid] = await Promise.all([
    run({ name: 'id', command: 'id', args: ['-u', user] }),
    run({ name: 'id', command: 'id', args: ['-g', user] }),
  ]);
  return { uid: Number(uid.trim()), gid: Number(gid.trim()) };
}
