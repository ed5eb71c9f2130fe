#ifndef CVSERVE_DECODE_H
#define CVSERVE_DECODE_H
#include <stddef.h>

/* decodeRgb's work, blocking, into `out` (width x height x 3 bytes): 1 when decoded, else 0 with why in `error`. */
int decode_rgb_into(const unsigned char *jpeg, size_t length, unsigned char *out, unsigned width, unsigned height, char *error, size_t error_size);

#endif
