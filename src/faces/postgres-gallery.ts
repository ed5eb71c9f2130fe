import pg from 'pg';
import { AppError } from '../errors.js';
import {
  checkEntries,
  checkModel,
  checkUserid,
  useridsToDelete,
  decodeDescriptorInto,
  DEFAULT_LIMITS,
  DESCRIPTOR_LENGTH,
  encodeDescriptor,
  galleryError,
  groupUsers,
  SCHEMA_VERSION,
  tooManyDescriptors,
  tooManyUsers,
  type AddResult,
  type FaceGallery,
  type FaceModel,
  type GalleryCounts,
  type GalleryEntry,
  type GalleryLimits,
  type GallerySnapshot,
  type GalleryUser,
} from './gallery.js';

/** Advisory lock held (per transaction) while a process creates or upgrades the schema. */
const MIGRATION_LOCK = 0x63767366; // "cvsf"

/** Schema migrations: MIGRATIONS[i] takes schema version i to i + 1. */
const MIGRATIONS: string[] = [
  `CREATE TABLE face_descriptors (
     id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
     userid TEXT NOT NULL,
     model_name TEXT NOT NULL,
     model_version TEXT NOT NULL,
     image_sha256 TEXT NOT NULL,
     descriptor BYTEA NOT NULL CHECK (length(descriptor) = ${DESCRIPTOR_LENGTH * 4}),
     created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
     UNIQUE (userid, model_name, model_version, image_sha256)
   );
   CREATE INDEX face_descriptors_model ON face_descriptors (model_name, model_version);`,
];

export interface PostgresGalleryOptions {
  /** postgres://user:password@host:port/database */
  url: string;
  limits?: GalleryLimits;
  /** Schema holding the tables (created when missing); default: the connection's search_path (public). */
  schema?: string;
  /** Most connections this process opens (default 4). */
  maxConnections?: number;
  /** Errors of idle connections (server restart, network): for the log; the pool replaces the connection. */
  onError?: (err: Error) => void;
}

/**
 * The face gallery in PostgreSQL (node-postgres), for several replicas sharing one gallery. Each
 * write is one transaction that first locks the meta row, so writers from every process are
 * serialized and the user/descriptor limits hold across replicas. Schema creation and upgrades run
 * under an advisory lock, so replicas starting together do not race.
 *
 * Deletion is a real DELETE, but PostgreSQL keeps dead row versions in the table file until VACUUM
 * reuses the space, and in its WAL and backups: see the README on wiping.
 */
export class PostgresGallery implements FaceGallery {
  readonly backend = 'postgres' as const;
  private readonly pool: pg.Pool;
  private readonly limits: GalleryLimits;
  private closed = false;

  private constructor(options: PostgresGalleryOptions) {
    this.limits = options.limits ?? DEFAULT_LIMITS;
    if (options.schema !== undefined && !/^[a-z_][a-z0-9_]{0,62}$/.test(options.schema)) throw new Error('invalid schema name');
    this.pool = new pg.Pool({
      connectionString: options.url,
      max: options.maxConnections ?? 4,
      connectionTimeoutMillis: 5000,
      idleTimeoutMillis: 30_000,
      statement_timeout: 15_000,
      application_name: 'cvserve',
      ...(options.schema !== undefined && { options: `-c search_path=${options.schema}` }),
    });
    this.pool.on('error', (err) => options.onError?.(err));
  }

  /** Connects, creates or upgrades the schema, and resolves once the gallery is usable. */
  static async open(options: PostgresGalleryOptions): Promise<PostgresGallery> {
    const gallery = new PostgresGallery(options);
    try {
      await gallery.migrate(options.schema);
      return gallery;
    } catch (err) {
      await gallery.pool.end().catch(() => {});
      throw galleryError(err);
    }
  }

  private async migrate(schema: string | undefined): Promise<void> {
    await this.transaction(async (c) => {
      await c.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
      if (schema !== undefined) await c.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
      await c.query('CREATE TABLE IF NOT EXISTS face_meta (id INTEGER PRIMARY KEY CHECK (id = 1), schema_version INTEGER NOT NULL, generation BIGINT NOT NULL)');
      await c.query('INSERT INTO face_meta (id, schema_version, generation) VALUES (1, 0, 0) ON CONFLICT (id) DO NOTHING');
      const { rows } = await c.query<{ schema_version: number }>('SELECT schema_version FROM face_meta WHERE id = 1 FOR UPDATE');
      const version = rows[0]!.schema_version;
      if (version > SCHEMA_VERSION) throw new Error(`face gallery schema ${version} is newer than this cvserve (${SCHEMA_VERSION})`);
      for (let v = version; v < SCHEMA_VERSION; v++) await c.query(MIGRATIONS[v]!);
      if (version < SCHEMA_VERSION) await c.query('UPDATE face_meta SET schema_version = $1 WHERE id = 1', [SCHEMA_VERSION]);
    });
  }

  async add(given: string, entries: GalleryEntry[], model: FaceModel): Promise<AddResult> {
    const userid = checkUserid(given);
    checkModel(model);
    checkEntries(entries);
    return this.transaction(async (c) => {
      await c.query('SELECT generation FROM face_meta WHERE id = 1 FOR UPDATE');
      const exists = (await c.query('SELECT 1 FROM face_descriptors WHERE userid = $1 LIMIT 1', [userid])).rowCount! > 0;
      if (!exists && entries.length > 0) {
        const { rows } = await c.query<{ users: string }>('SELECT COUNT(DISTINCT userid) AS users FROM face_descriptors');
        if (Number(rows[0]!.users) >= this.limits.maxUsers) throw tooManyUsers(this.limits);
      }
      const outcomes: AddResult['outcomes'] = [];
      for (const e of entries) {
        const r = await c.query(
          'INSERT INTO face_descriptors (userid, model_name, model_version, image_sha256, descriptor) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING',
          [userid, model.name, model.version, e.imageSha256, encodeDescriptor(e.descriptor)],
        );
        outcomes.push(r.rowCount === 1 ? 'added' : 'duplicate');
      }
      const added = outcomes.filter((o) => o === 'added').length;
      const { rows } = await c.query<{ n: string }>('SELECT COUNT(*) AS n FROM face_descriptors WHERE userid = $1', [userid]);
      const n = Number(rows[0]!.n);
      if (n > this.limits.maxDescriptorsPerUser) throw tooManyDescriptors(this.limits);
      if (added > 0) await c.query('UPDATE face_meta SET generation = generation + 1 WHERE id = 1');
      return { outcomes, added, duplicates: outcomes.length - added, userDescriptors: n, newUser: !exists && added > 0 };
    });
  }

  async list(): Promise<GalleryUser[]> {
    const { rows } = await this.query<{ userid: string; model_name: string; model_version: string; n: string }>(
      'SELECT userid, model_name, model_version, COUNT(*) AS n FROM face_descriptors GROUP BY userid, model_name, model_version ORDER BY userid COLLATE "C", model_name COLLATE "C", model_version COLLATE "C"',
    );
    return groupUsers(rows);
  }

  async delete(userid: string): Promise<number> {
    const names = useridsToDelete(userid);
    return this.transaction(async (c) => {
      await c.query('SELECT generation FROM face_meta WHERE id = 1 FOR UPDATE');
      const removed = (await c.query('DELETE FROM face_descriptors WHERE userid = ANY($1::text[])', [names])).rowCount ?? 0;
      if (removed > 0) await c.query('UPDATE face_meta SET generation = generation + 1 WHERE id = 1');
      return removed;
    });
  }

  async snapshot(model: FaceModel): Promise<GallerySnapshot> {
    checkModel(model);
    // One consistent view of the counter and the rows.
    return this.transaction(
      async (c) => {
        const { rows: meta } = await c.query<{ generation: string }>('SELECT generation FROM face_meta WHERE id = 1');
        const { rows } = await c.query<{ userid: string; descriptor: Buffer }>(
          'SELECT userid, descriptor FROM face_descriptors WHERE model_name = $1 AND model_version = $2 ORDER BY id',
          [model.name, model.version],
        );
        const vectors = new Float32Array(rows.length * DESCRIPTOR_LENGTH);
        rows.forEach((r, i) => decodeDescriptorInto(r.descriptor, vectors, i * DESCRIPTOR_LENGTH));
        return { model: { ...model }, generation: Number(meta[0]!.generation), userids: rows.map((r) => r.userid), vectors };
      },
      'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY',
    );
  }

  async generation(): Promise<number> {
    const { rows } = await this.query<{ generation: string }>('SELECT generation FROM face_meta WHERE id = 1');
    return Number(rows[0]!.generation);
  }

  async count(): Promise<GalleryCounts> {
    const { rows } = await this.query<{ users: string; descriptors: string }>('SELECT COUNT(DISTINCT userid) AS users, COUNT(*) AS descriptors FROM face_descriptors');
    return { users: Number(rows[0]!.users), descriptors: Number(rows[0]!.descriptors) };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pool.end();
  }

  private async query<R extends pg.QueryResultRow>(sql: string, params: unknown[] = []): Promise<pg.QueryResult<R>> {
    if (this.closed) throw new AppError('SHUTTING_DOWN', { detail: 'face gallery is closed' });
    try {
      return await this.pool.query<R>(sql, params);
    } catch (err) {
      throw galleryError(err);
    }
  }

  private async transaction<T>(work: (client: pg.PoolClient) => Promise<T>, begin = 'BEGIN'): Promise<T> {
    if (this.closed) throw new AppError('SHUTTING_DOWN', { detail: 'face gallery is closed' });
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (err) {
      throw galleryError(err);
    }
    let broken = false;
    try {
      await client.query(begin);
      const result = await work(client);
      await client.query('COMMIT');
      return result;
    } catch (err) {
      try {
        await client.query('ROLLBACK');
      } catch {
        broken = true; // the connection is gone: do not return it to the pool
      }
      throw galleryError(err);
    } finally {
      client.release(broken);
    }
  }
}
