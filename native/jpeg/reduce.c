/*
 * Downsizing by libvips' reduce, computed as libvips computes it, so the pixels are sharp's
 * `resize(...)` followed by an optional `extract(...)` whenever neither side grows and neither
 * shrinks by twice the reduce gap or more (then libvips box-shrinks first, and sharp is asked).
 * What it leaves out is libvips' pipeline: sharp's call, its threads and its region machinery cost
 * more than the arithmetic on a model-sized image. Byte-identical to sharp: tests/image/reduce.test.ts.
 *
 * Replicated from libvips 8.18 (resample/resize.c, reducev.cpp, reduceh.cpp, templates.h and the
 * Highway paths, whose integer sums are the C paths' sums):
 * - sharp asks vips_resize for scale 1 / hshrink and vscale 1 / vshrink; vips_resize reduces
 *   vertically by 1 / vscale, then horizontally by 1 / hscale, each to round(size / shrink);
 * - each pass embeds its input by ceil(n / 2) - 1 replicated pixels, takes the output pixel at
 *   position (i + 0.5) × shrink - 0.5 - offset, offset = (1 + extra) / 2 - 1 for the `extra` pixels
 *   rounding invented, and weights n = 2 × rint(support × shrink) + 1 taps with the kernel's
 *   coefficients at the position rounded to 1/64 pixel, normalised, truncated to 1/4096ths;
 * - a sum rounds as (sum + 2048) >> 12 and clips to 0..255; the vertical pass's result is 8-bit.
 * A pass starts its position from the first row or column asked of it and adds the shrink from there.
 *
 * reduceResize(src: Uint8Array, width, height, out: Uint8Array, hshrink, vshrink, kernel,
 *              left, top, outWidth, outHeight): Promise<void>
 * 3 interleaved channels; `out` receives the outWidth x outHeight window at (left, top) of the
 * reduced image. kernel: 1 linear, 2 cubic, 3 mitchell, 4 lanczos2, 5 lanczos3. Runs on libuv's
 * thread pool; the caller owns both buffers.
 *
 * reduceJpeg(jpeg: Uint8Array, width, height, out, ...the same): the JPEG (width x height) decoded
 * as decodeRgb does (decode.c) into memory of the task's own, reduced, and freed.
 */
#include <node_api.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "decode.h"
#include "reduce.h"

#define TRANSFORM_SCALE 64
#define INTERPOLATE_SHIFT 12
#define INTERPOLATE_SCALE (1 << INTERPOLATE_SHIFT)
#define CHANNELS 3
/* vips_resize's default gap: a reduce of 2 x gap or more box-shrinks first. */
#define REDUCE_GAP 2.0
/* Masks below 4x reduces have at most 25 taps (lanczos3); beyond that libvips box-shrinks first. */
#define MAX_TAPS 64

enum { K_LINEAR = 1, K_CUBIC, K_MITCHELL, K_LANCZOS2, K_LANCZOS3 };

/* One direction of the reduce: libvips' reducev or reduceh as built for this size. */
typedef struct {
  int in_size, out_size, n, embed;
  double shrink, offset;
  short coeff[TRANSFORM_SCALE + 1][MAX_TAPS];
} pass;

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  napi_ref src_ref;
  napi_ref out_ref;
  const uint8_t *src;
  /* reduceJpeg: the JPEG, decoded here into memory of the task's own. */
  const uint8_t *jpeg;
  size_t jpeg_length;
  uint8_t *out;
  int width, height, kernel, left, top, out_width, out_height;
  double hshrink, vshrink;
  const char *error;
  char message[256];
} reduce_task;

static double cubic_filter(double x, double B, double C) {
  const double ax = fabs(x);
  const double ax2 = ax * ax;
  const double ax3 = ax2 * ax;
  if (ax <= 1) return ((12 - 9 * B - 6 * C) * ax3 + (-18 + 12 * B + 6 * C) * ax2 + (6 - 2 * B)) / 6;
  if (ax <= 2) return ((-B - 6 * C) * ax3 + (6 * B + 30 * C) * ax2 + (-12 * B - 48 * C) * ax + (8 * B + 24 * C)) / 6;
  return 0.0;
}

static double sinc_filter(double x) {
  if (x == 0.0) return 1.0;
  x = x * M_PI;
  return sin(x) / x;
}

static double filter(int kernel, double x) {
  switch (kernel) {
    case K_LINEAR:
      x = fabs(x);
      return x < 1.0 ? 1.0 - x : 0.0;
    case K_CUBIC:
      return cubic_filter(x, 0.0, 0.5);
    case K_MITCHELL:
      return cubic_filter(x, 1.0 / 3.0, 1.0 / 3.0);
    case K_LANCZOS2:
      return x >= -2 && x <= 2 ? sinc_filter(x) * sinc_filter(x / 2) : 0.0;
    default:
      return x >= -3 && x <= 3 ? sinc_filter(x) * sinc_filter(x / 3) : 0.0;
  }
}

/* vips_reduce_get_points. */
static int points(int kernel, double shrink) {
  switch (kernel) {
    case K_LINEAR: return 2 * (int)rint(shrink) + 1;
    case K_CUBIC:
    case K_MITCHELL:
    case K_LANCZOS2: return 2 * (int)rint(2 * shrink) + 1;
    default: return 2 * (int)rint(3 * shrink) + 1;
  }
}

/* vips_reducev_build / vips_reduceh_build for `in_size` pixels reduced by `shrink`; 0 where libvips
 * would box-shrink first (or the mask is too large), so the caller leaves the job to sharp. */
static int build_pass(pass *p, int kernel, int in_size, double shrink) {
  p->in_size = in_size;
  p->shrink = shrink;
  p->out_size = (int)(in_size / shrink + 0.5);
  if (p->out_size < 1) return 0;
  const double extra = p->out_size * shrink - in_size;
  if ((int)fmax(1, floor((double)in_size / p->out_size / REDUCE_GAP)) > 1) return 0;
  p->n = points(kernel, shrink);
  if (p->n > MAX_TAPS) return 0;
  p->offset = (1 + extra) / 2.0 - 1;
  p->embed = (int)ceil(p->n / 2.0) - 1;
  double c[MAX_TAPS];
  for (int t = 0; t <= TRANSFORM_SCALE; t++) {
    /* calculate_coefficients at x = (float) t / 64 */
    const double x = (float)t / TRANSFORM_SCALE;
    const double half = x + p->n / 2.0 - 1;
    double sum = 0.0;
    for (int i = 0; i < p->n; i++) {
      c[i] = filter(kernel, (i - half) / shrink);
      sum += c[i];
    }
    for (int i = 0; i < p->n; i++) p->coeff[t][i] = (short)(c[i] / sum * INTERPOLATE_SCALE);
  }
  return 1;
}

/* The first tap (an index into the embedded input) and the coefficient row for `position`. */
static inline const short *taps(const pass *p, double position, int *first) {
  const int s = (int)(position * TRANSFORM_SCALE * 2);
  *first = (int)position;
  return p->coeff[((s & (TRANSFORM_SCALE * 2 - 1)) + 1) >> 1];
}

static inline int clamp_index(int i, int size) {
  return i < 0 ? 0 : i >= size ? size - 1 : i;
}

static inline uint8_t round_clip(int32_t sum) {
  const int32_t v = (sum + (INTERPOLATE_SCALE >> 1)) >> INTERPOLATE_SHIFT;
  return v < 0 ? 0 : v > 255 ? 255 : (uint8_t)v;
}

/* out[j] = round_clip(sum of k[i] x in[i][j]) for j < len: the sums row by row, as the passes had them. */
static void weigh_rows_portable(const uint8_t *const *in, const short *k, int n, size_t len, int32_t *sums, uint8_t *out) {
  for (size_t j = 0; j < len; j++) sums[j] = 0;
  for (int i = 0; i < n; i++) {
    const uint8_t *r = in[i];
    const int32_t c = k[i];
    for (size_t j = 0; j < len; j++) sums[j] += c * r[j];
  }
  for (size_t j = 0; j < len; j++) out[j] = round_clip(sums[j]);
}

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#include <immintrin.h>
/* The same with AVX2: blocks of 64 values summed over every tap in registers, where the pass over
 * the whole row per tap loads and stores the sums each time. Integer sums in another order: the
 * same values. The tail (under 64 values) is the portable loop's. */
__attribute__((target("avx2")))
static void weigh_rows_avx2(const uint8_t *const *in, const short *k, int n, size_t len, int32_t *sums, uint8_t *out) {
  const __m256i round = _mm256_set1_epi32(INTERPOLATE_SCALE >> 1);
  size_t j0 = 0;
  for (; j0 + 64 <= len; j0 += 64) {
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
    for (int i = 0; i < n; i++) {
      const uint8_t *r = in[i] + j0;
      const __m256i c = _mm256_set1_epi32(k[i]);
#define TAP(acc, at) acc = _mm256_add_epi32(acc, _mm256_mullo_epi32(c, _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(r + (at))))))
      TAP(a0, 0); TAP(a1, 8); TAP(a2, 16); TAP(a3, 24); TAP(a4, 32); TAP(a5, 40); TAP(a6, 48); TAP(a7, 56);
#undef TAP
    }
    /* Round, shift, then saturate to 16 and to 8 bits: the same clip to 0..255; packs interleave
     * 128-bit lanes, which the permute undoes. */
#define DONE(acc) _mm256_srai_epi32(_mm256_add_epi32(acc, round), INTERPOLATE_SHIFT)
    const __m256i w0 = _mm256_packs_epi32(DONE(a0), DONE(a1)), w1 = _mm256_packs_epi32(DONE(a2), DONE(a3));
    const __m256i w2 = _mm256_packs_epi32(DONE(a4), DONE(a5)), w3 = _mm256_packs_epi32(DONE(a6), DONE(a7));
#undef DONE
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    _mm256_storeu_si256((__m256i *)(out + j0), _mm256_permutevar8x32_epi32(_mm256_packus_epi16(w0, w1), order));
    _mm256_storeu_si256((__m256i *)(out + j0 + 32), _mm256_permutevar8x32_epi32(_mm256_packus_epi16(w2, w3), order));
  }
  if (j0 < len) {
    const uint8_t *tail[MAX_TAPS];
    for (int i = 0; i < n; i++) tail[i] = in[i] + j0;
    weigh_rows_portable(tail, k, n, len - j0, sums, out + j0);
  }
}

/* Set as the addon loads, before any task runs on libuv's threads. */
static int have_avx2;

static void detect_cpu(void) {
  __builtin_cpu_init();
  have_avx2 = __builtin_cpu_supports("avx2");
}

static void weigh_rows(const uint8_t *const *in, const short *k, int n, size_t len, int32_t *sums, uint8_t *out) {
  if (have_avx2) weigh_rows_avx2(in, k, n, len, sums, out);
  else weigh_rows_portable(in, k, n, len, sums, out);
}
#else
#define weigh_rows weigh_rows_portable
static void detect_cpu(void) {}
#endif

/* The sums are exact integers, so the AVX2 clone gives the same bytes, in wider vectors. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("avx2", "default")))
#endif
static void reduce(reduce_task *task) {
  const int w = task->width, h = task->height, ow = task->out_width, oh = task->out_height;
  pass *v = NULL, *hz = NULL;
  int *xfirst = NULL;
  const short **xcoeff = NULL;
  uint8_t *mid = NULL;
  const int reduce_v = 1.0 / task->vshrink < 1.0, reduce_h = 1.0 / task->hshrink < 1.0;
  v = malloc(sizeof *v);
  hz = malloc(sizeof *hz);
  if (!v || !hz) {
    task->error = "out of memory";
    goto done;
  }
  /* vips_resize's shrinks: 1 / scale, where sharp's scale is 1 / shrink. */
  if (reduce_v ? !build_pass(v, task->kernel, h, 1.0 / (1.0 / task->vshrink)) : task->vshrink != 1.0) {
    task->error = "not a plain vertical reduce";
    goto done;
  }
  if (reduce_h ? !build_pass(hz, task->kernel, w, 1.0 / (1.0 / task->hshrink)) : task->hshrink != 1.0) {
    task->error = "not a plain horizontal reduce";
    goto done;
  }
  const int full_w = reduce_h ? hz->out_size : w, full_h = reduce_v ? v->out_size : h;
  if (task->left < 0 || task->top < 0 || task->left + ow > full_w || task->top + oh > full_h) {
    task->error = "window outside the reduced image";
    goto done;
  }

  /* The horizontal taps: first one (embedded coordinates) and coefficients of each output column. */
  xfirst = malloc(sizeof(int) * ow);
  xcoeff = malloc(sizeof(short *) * ow);
  if (!xfirst || !xcoeff) {
    task->error = "out of memory";
    goto done;
  }
  /* Embedded columns the horizontal pass reads, [e0, e1], and the source columns behind them, [lo, hi]. */
  int e0 = task->left, e1 = task->left + ow - 1, embed = 0, n = 1;
  if (reduce_h) {
    double X = (task->left + 0.5) * hz->shrink - 0.5 - hz->offset;
    embed = hz->embed;
    n = hz->n;
    for (int x = 0; x < ow; x++, X += hz->shrink) xcoeff[x] = taps(hz, X, &xfirst[x]);
    e0 = xfirst[0];
    e1 = xfirst[ow - 1] + n - 1;
  }
  const int lo = clamp_index(e0 - embed, w), hi = clamp_index(e1 - embed, w);
  const size_t span = (size_t)(hi - lo + 1) * CHANNELS, columns = (size_t)(e1 - e0 + 1), column = (size_t)oh * CHANNELS;
  int32_t *sums = malloc(sizeof(int32_t) * (span > column ? span : column));
  uint8_t *row = malloc(span > column ? span : column);
  /* The vertical pass's result by embedded column (all rows of a column together), so the horizontal
   * pass runs down whole columns: the same sums, in an order the compiler vectorises. */
  mid = malloc(columns * column);
  if (!sums || !row || !mid) {
    free(sums);
    free(row);
    task->error = "out of memory";
    goto done;
  }

  const size_t src_stride = (size_t)w * CHANNELS;
  double Y = reduce_v ? (task->top + 0.5) * v->shrink - 0.5 - v->offset : 0;
  for (int y = 0; y < oh; y++) {
    const uint8_t *from = task->src + (size_t)lo * CHANNELS;
    if (!reduce_v) {
      memcpy(row, from + (size_t)(task->top + y) * src_stride, span);
    } else {
      int first;
      const short *k = taps(v, Y, &first);
      const uint8_t *rows[MAX_TAPS];
      for (int i = 0; i < v->n; i++) rows[i] = from + (size_t)clamp_index(first + i - v->embed, h) * src_stride;
      weigh_rows(rows, k, v->n, span, sums, row);
      Y += v->shrink;
    }
    if (!reduce_h) {
      memcpy(task->out + (size_t)y * ow * CHANNELS, row + (size_t)(task->left - lo) * CHANNELS, (size_t)ow * CHANNELS);
      continue;
    }
    for (size_t e = 0; e < columns; e++) {
      const uint8_t *p = row + (size_t)(clamp_index((int)(e0 + e) - embed, w) - lo) * CHANNELS;
      uint8_t *m = mid + e * column + (size_t)y * CHANNELS;
      m[0] = p[0];
      m[1] = p[1];
      m[2] = p[2];
    }
  }

  if (reduce_h) {
    for (int x = 0; x < ow; x++) {
      const uint8_t *columns_in[MAX_TAPS];
      for (int i = 0; i < n; i++) columns_in[i] = mid + (size_t)(xfirst[x] + i - e0) * column;
      weigh_rows(columns_in, xcoeff[x], n, column, sums, row);
      uint8_t *o = task->out + (size_t)x * CHANNELS;
      const size_t out_stride = (size_t)ow * CHANNELS;
      for (int y = 0; y < oh; y++, o += out_stride) {
        o[0] = row[y * CHANNELS];
        o[1] = row[y * CHANNELS + 1];
        o[2] = row[y * CHANNELS + 2];
      }
    }
  }
  free(sums);
  free(row);

done:
  free(v);
  free(hz);
  free(xfirst);
  free(xcoeff);
  free(mid);
}

static void execute(napi_env env, void *data) {
  (void)env;
  reduce_task *task = (reduce_task *)data;
  if (!task->jpeg) {
    reduce(task);
    return;
  }
  uint8_t *pixels = decode_rgb_alloc(task->jpeg, task->jpeg_length, (unsigned)task->width, (unsigned)task->height, task->message, sizeof task->message);
  if (!pixels) {
    task->error = task->message;
    return;
  }
  task->src = pixels;
  reduce(task);
  free(pixels);
}

static void complete(napi_env env, napi_status status, void *data) {
  reduce_task *task = (reduce_task *)data;
  napi_value result;
  if (status != napi_ok && !task->error) task->error = "reduce cancelled";
  if (task->error) {
    napi_value message;
    napi_create_string_utf8(env, task->error, NAPI_AUTO_LENGTH, &message);
    napi_create_error(env, NULL, message, &result);
    napi_reject_deferred(env, task->deferred, result);
  } else {
    napi_get_undefined(env, &result);
    napi_resolve_deferred(env, task->deferred, result);
  }
  napi_delete_reference(env, task->src_ref);
  napi_delete_reference(env, task->out_ref);
  napi_delete_async_work(env, task->work);
  free(task);
}

static int int_arg(napi_env env, napi_value value, int min, int max, int *out) {
  int32_t v;
  if (napi_get_value_int32(env, value, &v) != napi_ok || v < min || v > max) return 0;
  *out = v;
  return 1;
}

static int shrink_arg(napi_env env, napi_value value, double *out) {
  return napi_get_value_double(env, value, out) == napi_ok && isfinite(*out) && *out >= 1.0 && *out <= 65535;
}

/* reduceResize(src, width, height, out, ...) and reduceJpeg(jpeg, width, height, out, ...): the same
 * arguments, the first one pixels or a JPEG of width x height. */
static napi_value start_reduce(napi_env env, napi_callback_info info, int from_jpeg) {
  size_t argc = 11;
  napi_value argv[11], promise, name;
  uint8_t *src, *out;
  size_t src_length, out_length;
  reduce_task *task = calloc(1, sizeof *task);
  if (task == NULL) {
    napi_throw_error(env, NULL, "out of memory");
    return NULL;
  }
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 11 || !uint8_view(env, argv[0], &src, &src_length) || !int_arg(env, argv[1], 1, 65535, &task->width) || !int_arg(env, argv[2], 1, 65535, &task->height) ||
      !uint8_view(env, argv[3], &out, &out_length) || !shrink_arg(env, argv[4], &task->hshrink) || !shrink_arg(env, argv[5], &task->vshrink) ||
      !int_arg(env, argv[6], K_LINEAR, K_LANCZOS3, &task->kernel) || !int_arg(env, argv[7], 0, 65535, &task->left) || !int_arg(env, argv[8], 0, 65535, &task->top) ||
      !int_arg(env, argv[9], 1, 65535, &task->out_width) || !int_arg(env, argv[10], 1, 65535, &task->out_height)) {
    free(task);
    napi_throw_type_error(env, NULL, "expected (src: Uint8Array, width, height, out: Uint8Array, hshrink >= 1, vshrink >= 1, kernel 1-5, left, top, outWidth, outHeight)");
    return NULL;
  }
  if ((!from_jpeg && src_length != (size_t)task->width * task->height * CHANNELS) || out_length != (size_t)task->out_width * task->out_height * CHANNELS) {
    free(task);
    napi_throw_range_error(env, NULL, "buffers must hold width x height x 3 (pixels) and outWidth x outHeight x 3 bytes");
    return NULL;
  }
  if (from_jpeg) {
    task->jpeg = src;
    task->jpeg_length = src_length;
  } else {
    task->src = src;
  }
  task->out = out;
  napi_create_reference(env, argv[0], 1, &task->src_ref);
  napi_create_reference(env, argv[3], 1, &task->out_ref);
  napi_create_promise(env, &task->deferred, &promise);
  napi_create_string_utf8(env, "cvserve.reduce", NAPI_AUTO_LENGTH, &name);
  napi_create_async_work(env, NULL, name, execute, complete, task, &task->work);
  napi_queue_async_work(env, task->work);
  return promise;
}

static napi_value reduce_js(napi_env env, napi_callback_info info) {
  return start_reduce(env, info, 0);
}

static napi_value reduce_jpeg_js(napi_env env, napi_callback_info info) {
  return start_reduce(env, info, 1);
}

void register_reduce(napi_env env, napi_value exports) {
  napi_value fn;
  detect_cpu();
  napi_create_function(env, "reduceResize", NAPI_AUTO_LENGTH, reduce_js, NULL, &fn);
  napi_set_named_property(env, exports, "reduceResize", fn);
  napi_create_function(env, "reduceJpeg", NAPI_AUTO_LENGTH, reduce_jpeg_js, NULL, &fn);
  napi_set_named_property(env, exports, "reduceJpeg", fn);
}
