/** The Haar cascade files the service knows, as found in the models directory. */
export const CASCADES = {
  frontalFace: 'haarcascade_frontalface_alt.xml',
  frontalCatFace: 'haarcascade_frontalcatface_extended.xml',
} as const;

export type KnownCascade = (typeof CASCADES)[keyof typeof CASCADES];

/** A plain file name in the models directory: no directories, so a task can never point elsewhere. */
const CASCADE_FILE_NAME = /^[A-Za-z0-9_.-]+\.xml$/;

export function isCascadeFileName(name: string): boolean {
  return CASCADE_FILE_NAME.test(name) && !name.startsWith('.');
}
