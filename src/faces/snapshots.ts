import { modelKey, type FaceGallery, type FaceModel, type GallerySnapshot } from './gallery.js';

/**
 * The gallery's descriptors for a model, kept in memory and reloaded only when the gallery's
 * generation changed (a register or delete by this or any other process). Each call costs one tiny
 * query; concurrent reloads of the same model share one load.
 */
export class GallerySnapshots {
  private readonly cache = new Map<string, GallerySnapshot>();
  private readonly loading = new Map<string, Promise<GallerySnapshot>>();

  constructor(private readonly gallery: FaceGallery) {}

  async current(model: FaceModel): Promise<GallerySnapshot> {
    const key = modelKey(model);
    const generation = await this.gallery.generation();
    const cached = this.cache.get(key);
    if (cached && cached.generation === generation) return cached;
    let load = this.loading.get(key);
    if (!load) {
      load = this.gallery.snapshot(model).then(
        (snapshot) => {
          this.loading.delete(key);
          const known = this.cache.get(key);
          if (!known || snapshot.generation >= known.generation) this.cache.set(key, snapshot);
          return snapshot;
        },
        (err: unknown) => {
          this.loading.delete(key);
          throw err;
        },
      );
      this.loading.set(key, load);
    }
    const snapshot = await load;
    // A load that began before the change this call saw: load again.
    return snapshot.generation < generation ? this.current(model) : snapshot;
  }

  /** Forgets every snapshot (e.g. after closing the gallery). */
  clear(): void {
    this.cache.clear();
  }
}
