// npm's install step for cvserve's own addon (native/jpeg: JPEG decoding on the system's
// libjpeg-turbo). node-gyp comes with npm; it needs a C compiler and libjpeg's headers
// (Debian: libjpeg62-turbo-dev). Without them the install goes on and sharp decodes every JPEG
// (about twice the CPU); the server's startup log says so.
import { spawnSync } from 'node:child_process';

const result = spawnSync('node-gyp', ['rebuild', '--directory=native/jpeg'], { stdio: 'inherit', shell: process.platform === 'win32' });
if (result.status !== 0) {
  console.warn('\ncvserve: native/jpeg was not built (needs a C compiler and libjpeg headers, e.g. Debian libjpeg62-turbo-dev); JPEGs will be decoded by sharp.\n');
}
