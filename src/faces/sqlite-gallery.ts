import { closeSync, mkdirSync, openSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
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

export const SQLITE_FILE_NAME = 'faces.sqlite';

/** Schema migrations: MIGRATIONS[i] takes schema version i to i + 1. */
const MIGRATIONS: string[] = [
  `CREATE TABLE face_descriptors (
     id INTEGER PRIMARY KEY,
     userid TEXT NOT NULL,
     model_name TEXT NOT NULL,
     model_version TEXT NOT NULL,
     image_sha256 TEXT NOT NULL,
     descriptor BLOB NOT NULL CHECK (length(descriptor) = ${DESCRIPTOR_LENGTH * 4}),
     created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
     UNIQUE (userid, model_name, model_version, image_sha256)
   );
   CREATE INDEX face_descriptors_model ON face_descriptors (model_name, model_version);`,
];

export interface SqliteGalleryOptions {
  /** The database file (created with its directory when missing), e.g. `<dataDir>/faces.sqlite`. */
  file: string;
  limits?: GalleryLimits;
}

/**
 * The face gallery in one SQLite file (better-sqlite3, synchronous: each call is a few small
 * queries). Rollback-journal mode, not WAL: with `secure_delete` a deleted descriptor's bytes are
 * overwritten in the database file at commit, and no WAL file keeps old copies of the page.
 * Several processes may open the same file: writes take the database lock (BEGIN IMMEDIATE) and the
 * generation counter tells each process when its cached snapshot is stale.
 */
export class SqliteGallery implements FaceGallery {
  readonly backend = 'sqlite' as const;
  readonly file: string;
  private readonly db: Database.Database;
  private readonly limits: GalleryLimits;
  private closed = false;

  constructor(options: SqliteGalleryOptions) {
    this.file = options.file;
    this.limits = options.limits ?? DEFAULT_LIMITS;
    try {
      mkdirSync(path.dirname(this.file), { recursive: true, mode: 0o700 });
      // Created owner-only (biometric data); SQLite gives its journal the same mode. An existing file keeps its mode.
      closeSync(openSync(this.file, 'a', 0o600));
      this.db = new Database(this.file, { timeout: 5000 });
      this.db.pragma('journal_mode = DELETE');
      this.db.pragma('secure_delete = ON');
      this.db.pragma('synchronous = FULL');
      this.migrate();
    } catch (err) {
      throw galleryError(err);
    }
  }

  /** Creates or upgrades the schema, under the write lock so two processes cannot both migrate. */
  private migrate(): void {
    this.db
      .transaction(() => {
        this.db.exec('CREATE TABLE IF NOT EXISTS face_meta (id INTEGER PRIMARY KEY CHECK (id = 1), schema_version INTEGER NOT NULL, generation INTEGER NOT NULL)');
        this.db.exec('INSERT INTO face_meta (id, schema_version, generation) VALUES (1, 0, 0) ON CONFLICT (id) DO NOTHING');
        const { schema_version: version } = this.db.prepare('SELECT schema_version FROM face_meta WHERE id = 1').get() as { schema_version: number };
        if (version > SCHEMA_VERSION) throw new Error(`face gallery schema ${version} is newer than this cvserve (${SCHEMA_VERSION})`);
        for (let v = version; v < SCHEMA_VERSION; v++) this.db.exec(MIGRATIONS[v]!);
        if (version < SCHEMA_VERSION) this.db.prepare('UPDATE face_meta SET schema_version = ? WHERE id = 1').run(SCHEMA_VERSION);
      })
      .immediate();
  }

  async add(given: string, entries: GalleryEntry[], model: FaceModel): Promise<AddResult> {
    const userid = checkUserid(given);
    checkModel(model);
    checkEntries(entries);
    return this.guard(() =>
      this.db
        .transaction((): AddResult => {
          const exists = this.db.prepare('SELECT 1 FROM face_descriptors WHERE userid = ? LIMIT 1').get(userid) !== undefined;
          if (!exists && entries.length > 0) {
            const { users } = this.db.prepare('SELECT COUNT(DISTINCT userid) AS users FROM face_descriptors').get() as { users: number };
            if (users >= this.limits.maxUsers) throw tooManyUsers(this.limits);
          }
          const insert = this.db.prepare(
            'INSERT INTO face_descriptors (userid, model_name, model_version, image_sha256, descriptor) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING',
          );
          const outcomes = entries.map((e) =>
            insert.run(userid, model.name, model.version, e.imageSha256, encodeDescriptor(e.descriptor)).changes === 1 ? ('added' as const) : ('duplicate' as const),
          );
          const added = outcomes.filter((o) => o === 'added').length;
          const { n } = this.db.prepare('SELECT COUNT(*) AS n FROM face_descriptors WHERE userid = ?').get(userid) as { n: number };
          if (n > this.limits.maxDescriptorsPerUser) throw tooManyDescriptors(this.limits);
          if (added > 0) this.bump();
          return { outcomes, added, duplicates: outcomes.length - added, userDescriptors: n, newUser: !exists && added > 0 };
        })
        .immediate(),
    );
  }

  async list(): Promise<GalleryUser[]> {
    return this.guard(() => {
      const rows = this.db
        .prepare('SELECT userid, model_name, model_version, COUNT(*) AS n FROM face_descriptors GROUP BY userid, model_name, model_version ORDER BY userid, model_name, model_version')
        .all() as { userid: string; model_name: string; model_version: string; n: number }[];
      return groupUsers(rows);
    });
  }

  async delete(userid: string): Promise<number> {
    const names = useridsToDelete(userid);
    return this.guard(() =>
      this.db
        .transaction(() => {
          const remove = this.db.prepare('DELETE FROM face_descriptors WHERE userid = ?');
          const removed = names.reduce((n, name) => n + remove.run(name).changes, 0);
          if (removed > 0) this.bump();
          return removed;
        })
        .immediate(),
    );
  }

  async snapshot(model: FaceModel): Promise<GallerySnapshot> {
    checkModel(model);
    return this.guard(() =>
      this.db.transaction((): GallerySnapshot => {
        const generation = this.readGeneration();
        const rows = this.db
          .prepare('SELECT userid, descriptor FROM face_descriptors WHERE model_name = ? AND model_version = ? ORDER BY id')
          .all(model.name, model.version) as { userid: string; descriptor: Buffer }[];
        const vectors = new Float32Array(rows.length * DESCRIPTOR_LENGTH);
        rows.forEach((r, i) => decodeDescriptorInto(r.descriptor, vectors, i * DESCRIPTOR_LENGTH));
        return { model: { ...model }, generation, userids: rows.map((r) => r.userid), vectors };
      })(),
    );
  }

  async generation(): Promise<number> {
    return this.guard(() => this.readGeneration());
  }

  async count(): Promise<GalleryCounts> {
    return this.guard(() => this.db.prepare('SELECT COUNT(DISTINCT userid) AS users, COUNT(*) AS descriptors FROM face_descriptors').get() as GalleryCounts);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.db.close();
  }

  private readGeneration(): number {
    return (this.db.prepare('SELECT generation FROM face_meta WHERE id = 1').get() as { generation: number }).generation;
  }

  private bump(): void {
    this.db.prepare('UPDATE face_meta SET generation = generation + 1 WHERE id = 1').run();
  }

  private guard<T>(work: () => T): Promise<T> {
    if (this.closed) return Promise.reject(new AppError('SHUTTING_DOWN', { detail: 'face gallery is closed' }));
    try {
      return Promise.resolve(work());
    } catch (err) {
      return Promise.reject(galleryError(err));
    }
  }
}
