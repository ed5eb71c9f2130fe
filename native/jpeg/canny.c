/* OpenCV's edge map, computed as OpenCV 4.x computes it (imgproc/src/canny.cpp,
 * color_rgb.simd.hpp), so the bytes are cv.Canny's (tests/image/canny.test.ts):
 *
 *  - RGB to gray: cvtColor's 8-bit fixed point, (9798 R + 19235 G + 3735 B + 2^14) >> 15;
 *  - Sobel dx and dy, aperture 3, replicated border, 16-bit;
 *  - the L1 magnitude, non-maximum suppression in four sectors (tan 22.5 in 1/2^15ths), the
 *    thresholds swapped when reversed and floored;
 *  - hysteresis: every candidate 8-connected to one above the high threshold.
 *
 * The SIMD build of OpenCV.js takes 2.3 ms for a 640x482 photo and 15 ms for a 2372x1334 one; these
 * loops take a third of that. Blocking: they run in the OpenCV worker that asked. */
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "canny.h"
#include "decode.h"

enum { GRAY_SHIFT = 15, R2Y = 9798, G2Y = 19235, B2Y = 3735 };
enum { CANNY_SHIFT = 15, TG22 = 13573 /* (int)(tan(22.5°) * 2^15 + 0.5) */ };
/* Sides as ints with room for the map's border (a PNG may be 70000 pixels wide; a JPEG at most 65535). */
#define MAX_SIDE (1u << 30)

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define VECTOR_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define VECTOR_CLONES
#endif

static inline uint8_t luma(const uint8_t *p) {
  return (uint8_t)((p[0] * R2Y + p[1] * G2Y + p[2] * B2Y + (1 << (GRAY_SHIFT - 1))) >> GRAY_SHIFT);
}

/* RGB or RGBA (alpha ignored) to gray. */
VECTOR_CLONES
static void to_gray(const uint8_t *restrict src, int channels, size_t pixels, uint8_t *restrict gray) {
  if (channels == 3) {
    for (size_t i = 0; i < pixels; i++) gray[i] = luma(src + 3 * i);
  } else {
    for (size_t i = 0; i < pixels; i++) gray[i] = luma(src + 4 * i);
  }
}

/* One row of Sobel dx, dy (replicated border) and |dx| + |dy|. `vs` and `vd` are scratch rows of
 * width + 2: the vertical [1 2 1] sum and [-1 0 1] difference, padded by replication. */
VECTOR_CLONES
static void gradient_row(const uint8_t *above, const uint8_t *row, const uint8_t *below, int w, int16_t *vs, int16_t *vd, int16_t *dx, int16_t *dy, int32_t *mag) {
  for (int x = 0; x < w; x++) {
    vs[x + 1] = (int16_t)(above[x] + 2 * row[x] + below[x]);
    vd[x + 1] = (int16_t)(below[x] - above[x]);
  }
  vs[0] = vs[1];
  vs[w + 1] = vs[w];
  vd[0] = vd[1];
  vd[w + 1] = vd[w];
  for (int x = 0; x < w; x++) {
    const int16_t gx = (int16_t)(vs[x + 2] - vs[x]);
    const int16_t gy = (int16_t)(vd[x] + 2 * vd[x + 1] + vd[x + 2]);
    dx[x] = gx;
    dy[x] = gy;
    mag[x] = abs(gx) + abs(gy);
  }
}

typedef struct {
  uint8_t **items;
  size_t size, capacity;
} stack;

static int push(stack *s, uint8_t *p) {
  if (s->size == s->capacity) {
    const size_t capacity = s->capacity ? s->capacity * 2 : 4096;
    uint8_t **items = realloc(s->items, capacity * sizeof *items);
    if (items == NULL) return 0;
    s->items = items;
    s->capacity = capacity;
  }
  s->items[s->size++] = p;
  return 1;
}

/* The non-maximum suppression of one row into `map` (0: a candidate, 1: not an edge, 2: an edge,
 * pushed). `prev`, `cur` and `next` are magnitude rows with a zero on either side. */
static int suppress_row(const int32_t *prev, const int32_t *cur, const int32_t *next, const int16_t *dx, const int16_t *dy, int w, int low, int high, uint8_t *map, stack *edges) {
  for (int j = 0; j < w; j++) {
    const int m = cur[j];
    int keep = 0;
    if (m > low) {
      const int xs = dx[j], ys = dy[j];
      const int x = abs(xs), y = abs(ys) << CANNY_SHIFT;
      const int tg22x = x * TG22;
      if (y < tg22x) {
        keep = m > cur[j - 1] && m >= cur[j + 1];
      } else {
        const int tg67x = tg22x + (x << (CANNY_SHIFT + 1));
        if (y > tg67x) {
          keep = m > prev[j] && m >= next[j];
        } else {
          const int s = (xs ^ ys) < 0 ? -1 : 1;
          keep = m > prev[j - s] && m > next[j + s];
        }
      }
    }
    if (!keep) {
      map[j] = 1;
    } else if (m > high) {
      map[j] = 2;
      if (!push(edges, map + j)) return 0;
    } else {
      map[j] = 0;
    }
  }
  return 1;
}

static int hysteresis(stack *edges, ptrdiff_t step) {
  static const int dr[8] = {-1, -1, -1, 0, 0, 1, 1, 1};
  static const int dc[8] = {-1, 0, 1, -1, 1, -1, 0, 1};
  while (edges->size > 0) {
    uint8_t *m = edges->items[--edges->size];
    for (int k = 0; k < 8; k++) {
      uint8_t *n = m + dr[k] * step + dc[k];
      if (*n == 0) {
        *n = 2;
        if (!push(edges, n)) return 0;
      }
    }
  }
  return 1;
}

/* cv.Canny of a gray image into `out` (0 or 255 per pixel): NULL, else why not. */
static const char *canny_gray(const uint8_t *gray, int w, int h, double threshold1, double threshold2, uint8_t *out) {
  if (threshold1 > threshold2) {
    const double t = threshold1;
    threshold1 = threshold2;
    threshold2 = t;
  }
  const int low = (int)fmin(floor(threshold1), INT_MAX), high = (int)fmin(floor(threshold2), INT_MAX);
  const ptrdiff_t step = (ptrdiff_t)w + 2;
  uint8_t *map = malloc((size_t)step * ((size_t)h + 2));
  int16_t *rows = malloc(sizeof(int16_t) * ((size_t)w * 6 + 4));
  int32_t *mags = calloc((size_t)step * 4, sizeof(int32_t));
  stack edges = {0};
  const char *error = NULL;
  if (map == NULL || rows == NULL || mags == NULL) {
    error = "out of memory";
    goto done;
  }
  memset(map, 1, (size_t)step);
  memset(map + step * (h + 1), 1, (size_t)step);
  int16_t *vs = rows, *vd = rows + w + 2, *dxs[2] = {vd + w + 2, vd + 2 * w + 2}, *dys[2] = {vd + 3 * w + 2, vd + 4 * w + 2};
  /* Magnitude rows with a zero either side: ring[0..2] hold rows i-1, i, i+1; ring[3] stays zero
   * (the rows outside the image). */
  int32_t *ring[4] = {mags + 1, mags + step + 1, mags + 2 * step + 1, mags + 3 * step + 1};
  int32_t *zero = ring[3];
  for (int i = 0; i <= h; i++) {
    int32_t *prev = ring[0], *cur = ring[1], *next = ring[2];
    if (i < h) {
      const uint8_t *row = gray + (size_t)i * w;
      const uint8_t *above = i > 0 ? row - w : row, *below = i + 1 < h ? row + w : row;
      gradient_row(above, row, below, w, vs, vd, dxs[i & 1], dys[i & 1], next);
    }
    if (i > 0) {
      const int r = i - 1;
      uint8_t *mrow = map + step * (r + 1) + 1;
      mrow[-1] = mrow[w] = 1;
      if (!suppress_row(r > 0 ? prev : zero, cur, i < h ? next : zero, dxs[r & 1], dys[r & 1], w, low, high, mrow, &edges)) {
        error = "out of memory";
        goto done;
      }
    }
    ring[0] = cur;
    ring[1] = next;
    ring[2] = prev;
  }
  if (!hysteresis(&edges, step)) {
    error = "out of memory";
    goto done;
  }
  for (int i = 0; i < h; i++) {
    const uint8_t *mrow = map + step * (i + 1) + 1;
    uint8_t *o = out + (size_t)i * w;
    for (int j = 0; j < w; j++) o[j] = (uint8_t)-(mrow[j] >> 1);
  }
done:
  free(map);
  free(rows);
  free(mags);
  free(edges.items);
  return error;
}

/* cannySync(pixels: Uint8Array, width, height, channels: 1 | 3 | 4, threshold1, threshold2,
 * out: Uint8Array): null when `out` holds the edge map, else why not. */
static napi_value canny_js(napi_env env, napi_callback_info info) {
  size_t argc = 7, length = 0, out_length = 0;
  napi_value argv[7], result;
  unsigned char *pixels, *out;
  uint32_t width, height, channels;
  double t1, t2;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 7 || !uint8_view(env, argv[0], &pixels, &length) || napi_get_value_uint32(env, argv[1], &width) != napi_ok ||
      napi_get_value_uint32(env, argv[2], &height) != napi_ok || napi_get_value_uint32(env, argv[3], &channels) != napi_ok ||
      napi_get_value_double(env, argv[4], &t1) != napi_ok || napi_get_value_double(env, argv[5], &t2) != napi_ok ||
      !uint8_view(env, argv[6], &out, &out_length)) {
    napi_throw_type_error(env, NULL, "expected (pixels: Uint8Array, width, height, channels, threshold1, threshold2, out: Uint8Array)");
    return NULL;
  }
  const size_t count = (size_t)width * height;
  if (width == 0 || height == 0 || width > MAX_SIDE || height > MAX_SIDE || (channels != 1 && channels != 3 && channels != 4) ||
      length < count * channels || out_length < count || !isfinite(t1) || !isfinite(t2) || t1 < 0 || t2 < 0) {
    napi_throw_range_error(env, NULL, "pixels must hold width x height x channels (1, 3 or 4) bytes, out width x height, thresholds >= 0");
    return NULL;
  }
  const char *error = NULL;
  uint8_t *gray = channels == 1 ? pixels : malloc(count);
  if (gray == NULL) {
    error = "out of memory";
  } else {
    if (channels != 1) to_gray(pixels, (int)channels, count, gray);
    error = canny_gray(gray, (int)width, (int)height, t1, t2, out);
    if (gray != pixels) free(gray);
  }
  if (error) napi_create_string_utf8(env, error, NAPI_AUTO_LENGTH, &result);
  else napi_get_null(env, &result);
  return result;
}

/* cannyJpegSync(jpeg: Uint8Array, width, height, threshold1, threshold2, out: Uint8Array): the
 * JPEG decoded as decodeRgb decodes it, then cannySync's work; null when done, else why not (libjpeg
 * refused the file: the caller decodes it another way). */
static napi_value canny_jpeg_js(napi_env env, napi_callback_info info) {
  size_t argc = 6, length = 0, out_length = 0;
  napi_value argv[6], result;
  unsigned char *jpeg, *out;
  uint32_t width, height;
  double t1, t2;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 6 || !uint8_view(env, argv[0], &jpeg, &length) || napi_get_value_uint32(env, argv[1], &width) != napi_ok ||
      napi_get_value_uint32(env, argv[2], &height) != napi_ok || napi_get_value_double(env, argv[3], &t1) != napi_ok ||
      napi_get_value_double(env, argv[4], &t2) != napi_ok || !uint8_view(env, argv[5], &out, &out_length)) {
    napi_throw_type_error(env, NULL, "expected (jpeg: Uint8Array, width, height, threshold1, threshold2, out: Uint8Array)");
    return NULL;
  }
  const size_t count = (size_t)width * height;
  if (width == 0 || height == 0 || width > 65535 || height > 65535 || out_length < count || !isfinite(t1) || !isfinite(t2) || t1 < 0 || t2 < 0) {
    napi_throw_range_error(env, NULL, "out must hold width x height bytes, thresholds >= 0");
    return NULL;
  }
  char why[200] = {0};
  const char *error = NULL;
  uint8_t *rgb = decode_rgb_alloc(jpeg, length, width, height, why, sizeof why);
  uint8_t *gray = rgb ? malloc(count) : NULL;
  if (rgb == NULL) {
    error = why[0] ? why : "libjpeg refused the file";
  } else if (gray == NULL) {
    error = "out of memory";
  } else {
    to_gray(rgb, 3, count, gray);
    free(rgb);
    rgb = NULL;
    error = canny_gray(gray, (int)width, (int)height, t1, t2, out);
  }
  free(rgb);
  free(gray);
  if (error) napi_create_string_utf8(env, error, NAPI_AUTO_LENGTH, &result);
  else napi_get_null(env, &result);
  return result;
}

void register_canny(napi_env env, napi_value exports) {
  napi_value fn;
  napi_create_function(env, "cannySync", NAPI_AUTO_LENGTH, canny_js, NULL, &fn);
  napi_set_named_property(env, exports, "cannySync", fn);
  napi_create_function(env, "cannyJpegSync", NAPI_AUTO_LENGTH, canny_jpeg_js, NULL, &fn);
  napi_set_named_property(env, exports, "cannyJpegSync", fn);
}
