import { AppError } from '../errors.js';
import type { FaceGalleryService } from '../faces/service.js';
import { requiredUserid } from './fields.js';
import type { DialectRequest } from './request.js';

/** The face gallery operations the face routes use (the app's face service). */
export type DeepstackGallery = Pick<FaceGalleryService, 'register' | 'list' | 'delete' | 'match' | 'status'>;

type Answer = Record<string, unknown>;

export async function registerFaces(gallery: DeepstackGallery, body: DialectRequest, signal: AbortSignal): Promise<Answer> {
  const userid = requiredUserid(body.fields);
  if (body.files.length === 0) throw new AppError('MISSING_IMAGE', { publicMessage: 'No valid image file found: send one or more image files with the userid' });
  const result = await gallery.register(userid, body.files, signal);
  return { success: true, message: result.added > 0 ? 'face added' : 'face already registered', ...result };
}

export async function listUsers(gallery: DeepstackGallery): Promise<Answer> {
  const users = await gallery.list();
  return { success: true, faces: users.map((u) => u.userid), users };
}

export async function deleteUser(gallery: DeepstackGallery, body: DialectRequest): Promise<Answer> {
  const { deleted } = await gallery.delete(requiredUserid(body.fields));
  return { success: true, deleted };
}

export async function matchFaces(gallery: DeepstackGallery, body: DialectRequest, signal: AbortSignal): Promise<Answer> {
  const { files } = body;
  if (files.length === 0) throw new AppError('MISSING_IMAGE', { publicMessage: 'No valid image file found: send two image files' });
  if (files.length === 1) throw new AppError('BAD_PARAMETER', { publicMessage: 'expected two image files, only one found' });
  if (files.length > 2) throw new AppError('BAD_PARAMETER', { publicMessage: 'only two images allowed' });
  const { similarity } = await gallery.match(files[0]!.bytes, files[1]!.bytes, signal);
  return { success: true, similarity };
}
