// Preloaded with --require: the process behaves as if native/jpeg had not been built (no compiler
// or no libjpeg headers at install), without touching the checkout's build.
const Module = require('node:module');
const loadNative = Module._extensions['.node'];
Module._extensions['.node'] = function (module, filename) {
  if (filename.endsWith('cvserve_jpeg.node')) throw new Error('simulated: the JPEG addon was not built');
  return loadNative(module, filename);
};
