import path from 'node:path';
import type { FaceGallery, GalleryLimits } from './gallery.js';
import { PostgresGallery } from './postgres-gallery.js';
import { SQLITE_FILE_NAME, SqliteGallery } from './sqlite-gallery.js';

export interface OpenGalleryOptions {
  /** CVSERVE_DATA_DIR: the SQLite file goes here when no database URL is set. */
  dataDir: string;
  /** CVSERVE_DATABASE_URL: PostgreSQL when set (non-empty). */
  databaseUrl: string;
  limits: GalleryLimits;
  /** Errors of idle PostgreSQL connections, for the log. */
  onError?: (err: Error) => void;
}

/** The configured gallery, its schema created or upgraded. Rejects with GALLERY_UNAVAILABLE when it cannot be opened. */
export async function openGallery(options: OpenGalleryOptions): Promise<FaceGallery> {
  if (options.databaseUrl) return PostgresGallery.open({ url: options.databaseUrl, limits: options.limits, onError: options.onError });
  return new SqliteGallery({ file: galleryFile(options.dataDir), limits: options.limits });
}

/** Where the SQLite gallery lives in a data directory. */
export function galleryFile(dataDir: string): string {
  return path.resolve(dataDir, SQLITE_FILE_NAME);
}

