/** DOM helpers the playground's modules share. */

export const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

export function readAsDataUrl(blob: Blob): Promise<string> {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result));
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(blob);
  });
}
