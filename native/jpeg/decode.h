#ifndef CVSERVE_DECODE_H
#define CVSERVE_DECODE_H
#include <node_api.h>
#include <stddef.h>

/* decodeRgb's work, blocking, into memory of its own (width x height x 3 bytes, the caller frees
 * it): NULL with why in `error` when libjpeg refuses the file. */
unsigned char *decode_rgb_alloc(const unsigned char *jpeg, size_t length, unsigned width, unsigned height, char *error, size_t error_size);

/* A Uint8Array argument's bytes: 0 when `value` is not one. */
int uint8_view(napi_env env, napi_value value, unsigned char **data, size_t *length);

#endif
