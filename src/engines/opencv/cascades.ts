/** The Haar cascade files the service knows, as found in the models directory. */
export const CASCADES = {
  frontalFace: 'haarcascade_frontalface_alt.xml',
  frontalCatFace: 'haarcascade_frontalcatface_extended.xml',
} as const;

/** A plain file name in the models directory: no directories, so a task can never point elsewhere. */
const CASCADE_FILE_NAME = /^[A-Za-z0-9_.-]+\.xml$/;

export function isCascadeFileName(name: string): boolean {
  return CASCADE_FILE_NAME.test(name) && !name.startsWith('.');
}

/** The detection window from a cascade XML's start: <width>/<height> (traincascade format) or <size>W H</size> (old format). */
export function cascadeWindow(xml: string): [number, number] | undefined {
  const w = /<width>\s*(\d+)\s*<\/width>/.exec(xml);
  const h = /<height>\s*(\d+)\s*<\/height>/.exec(xml);
  if (w && h) return [Number(w[1]), Number(h[1])];
  const size = /<size>\s*(\d+)\s+(\d+)\s*<\/size>/.exec(xml);
  return size ? [Number(size[1]), Number(size[2])] : undefined;
}
