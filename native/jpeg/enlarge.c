/*
 * Enlargement by libvips' bicubic interpolator, computed as libvips computes it, so the pixels are
 * sharp's `resize(w, h, { fit: 'fill' })` whenever both sides grow, for every kernel but nearest
 * and linear (vips_resize upsizes with the "bicubic" interpolator for all the others). What it
 * leaves out is libvips' per-pixel affine machinery: a 320x320 frame to 416x416 costs ~8 ms of CPU
 * in sharp. Byte-identical to sharp: tests/image/enlarge.test.ts.
 *
 * Replicated from libvips 8.18 (resample/resize.c, affine.c, transform.c, bicubic.cpp, templates.h):
 * - vips_resize upsizes with vips_affine(hscale, 0, 0, vscale, idx = idy = 0.5, extend copy), where
 *   sharp's scale is 1 / (input / target);
 * - vips_affine borders the input by 2 replicated pixels (its displacement less 1), and walks an
 *   output row by adding the inverse scale to a double from column 0;
 * - the interpolator rounds the position to 1/64 pixel and weights with Catmull-Rom coefficients
 *   in 1/4096ths (truncated from doubles): each of 4 rows across, rounded, then those 4 down,
 *   rounded and clipped. That is separable as it stands: rows across once, then columns down.
 *
 * enlargeBicubic(src: Uint8Array, width, height, out: Uint8Array, outWidth, outHeight, vector = true): Promise<void>
 * 3 interleaved channels; runs on libuv's thread pool; the caller owns both buffers. With AVX-512
 * VBMI (checked at run time) both passes run 16 values at a time; vector = false keeps the portable
 * loops, for the tests to compare.
 * enlargeJpeg(jpeg: Uint8Array, width, height, out, outWidth, outHeight): the JPEG (width x height)
 * decoded as decodeRgb does (decode.c) into memory of the task's own, enlarged, and freed.
 */
#include <node_api.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "decode.h"
#include "enlarge.h"

#define TRANSFORM_SCALE 64
#define INTERPOLATE_SHIFT 12
#define ROUND (1 << (INTERPOLATE_SHIFT - 1))
#define CHANNELS 3
/* vips_resize's input displacement when upsizing (libvips 8.19 scales it: the test would say so). */
#define CENTRE_DISPLACEMENT 0.5

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  napi_ref src_ref;
  napi_ref out_ref;
  const uint8_t *src;
  /* enlargeJpeg: the JPEG, decoded here into memory of the task's own. */
  const uint8_t *jpeg;
  size_t jpeg_length;
  uint8_t *out;
  int width, height, out_width, out_height;
  /* 0: the portable loops only (the tests compare both ways). */
  int vector;
  const char *error;
  char message[256];
} enlarge_task;

/* vips_bicubic_matrixi. */
static void catmull_weights(int table[TRANSFORM_SCALE + 1][4]) {
  for (int i = 0; i <= TRANSFORM_SCALE; i++) {
    const double x = (float)i / TRANSFORM_SCALE;
    const double cr1 = 1. - x;
    const double cr2 = -.5 * x;
    const double cr3 = cr1 * cr2;
    const double cone = cr1 * cr3;
    const double cfou = x * cr3;
    const double cr4 = cfou - cone;
    const double ctwo = cr1 - cone + cr4;
    const double cthr = x - cfou - cr4;
    table[i][0] = (int)(cone * (1 << INTERPOLATE_SHIFT));
    table[i][1] = (int)(ctwo * (1 << INTERPOLATE_SHIFT));
    table[i][2] = (int)(cthr * (1 << INTERPOLATE_SHIFT));
    table[i][3] = (int)(cfou * (1 << INTERPOLATE_SHIFT));
  }
}

/* The source index (clamped) and weight of each of an output coordinate's 4 taps, from its position
 * in the bordered input (vips_interpolate_bicubic_interpolate). */
static void taps(double position, int in_size, int table[TRANSFORM_SCALE + 1][4], int *index, int *weight) {
  const int s = (int)(position * TRANSFORM_SCALE * 2);
  const int t = ((s & (TRANSFORM_SCALE * 2 - 1)) + 1) >> 1;
  const int first = (int)position - 1 - 2;
  for (int k = 0; k < 4; k++) {
    const int i = first + k;
    index[k] = i < 0 ? 0 : i >= in_size ? in_size - 1 : i;
    weight[k] = table[t][k];
  }
}

/* One source row across: each output column from its 4 taps, rounded. */
static void across_row(const uint8_t *row, int ow, const int *xi, const int *xw, int32_t *o) {
  for (int x = 0; x < ow; x++) {
    const int *i = xi + 4 * x, *c = xw + 4 * x;
    const uint8_t *p0 = row + i[0] * CHANNELS, *p1 = row + i[1] * CHANNELS, *p2 = row + i[2] * CHANNELS, *p3 = row + i[3] * CHANNELS;
    for (int b = 0; b < CHANNELS; b++) *o++ = (c[0] * p0[b] + c[1] * p1[b] + c[2] * p2[b] + c[3] * p3[b] + ROUND) >> INTERPOLATE_SHIFT;
  }
}

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#include <immintrin.h>
#define ACROSS_VBMI 1
/* Rows across 16 values at a time with AVX-512 VBMI (most of the enlargement's time went to the
 * portable loop's indexed loads). For each group of 16 output values, every tap's source byte lies
 * in one 64-byte window of the row (an enlargement spans at most 6 source pixels plus 3 taps per
 * 16 values): one byte permute per tap pair puts the pixels in 16-bit lanes beside their weights,
 * and vpmaddwd sums exactly what the portable loop sums. */
#define GROUP 16
typedef struct {
  int groups;
  int32_t *base;          /* each group's window start, in bytes of the row */
  __mmask64 *load;        /* the window's bytes inside the row */
  uint8_t *control;       /* per group: 64 bytes for taps 0 and 1, 64 for taps 2 and 3 */
  int16_t *weights;       /* per group: 32 words for taps 0 and 1, 32 for taps 2 and 3 */
} across_plan;

static void free_plan(across_plan *plan) {
  free(plan->base);
  free(plan->load);
  free(plan->control);
  free(plan->weights);
}

/* The plan for rows of `w` pixels to `ow`, or 0 where a window would not hold a group's taps. */
static int make_plan(across_plan *plan, int w, int ow, const int *xi, const int *xw) {
  const int n = ow * CHANNELS, row = w * CHANNELS;
  plan->groups = (n + GROUP - 1) / GROUP;
  plan->base = malloc(sizeof(int32_t) * plan->groups);
  plan->load = malloc(sizeof(__mmask64) * plan->groups);
  plan->control = aligned_alloc(64, (size_t)plan->groups * 128);
  plan->weights = aligned_alloc(64, (size_t)plan->groups * 128);
  if (!plan->base || !plan->load || !plan->control || !plan->weights) return 0;
  for (int g = 0; g < plan->groups; g++) {
    int lo = row, hi = 0;
    for (int m = 0; m < GROUP && g * GROUP + m < n; m++) {
      const int j = g * GROUP + m, x = j / CHANNELS, b = j % CHANNELS;
      for (int k = 0; k < 4; k++) {
        const int off = xi[4 * x + k] * CHANNELS + b;
        lo = off < lo ? off : lo;
        hi = off > hi ? off : hi;
      }
    }
    if (hi - lo > 63) return 0;
    plan->base[g] = lo;
    plan->load[g] = row - lo >= 64 ? ~(__mmask64)0 : (((__mmask64)1 << (row - lo)) - 1);
    uint8_t *control = plan->control + (size_t)g * 128;
    int16_t *weights = plan->weights + (size_t)g * 64;
    memset(control, 0, 128);
    memset(weights, 0, 128);
    for (int m = 0; m < GROUP && g * GROUP + m < n; m++) {
      const int j = g * GROUP + m, x = j / CHANNELS, b = j % CHANNELS;
      for (int k = 0; k < 4; k++) {
        const int half = k >> 1, lane = 2 * m + (k & 1);
        control[half * 64 + 2 * lane] = (uint8_t)(xi[4 * x + k] * CHANNELS + b - lo);
        weights[half * 32 + lane] = (int16_t)xw[4 * x + k];
      }
    }
  }
  return 1;
}

__attribute__((target("avx512f,avx512bw,avx512vbmi")))
static void across_row_vbmi(const uint8_t *row, int ow, const across_plan *plan, int32_t *o) {
  const __mmask64 even = 0x5555555555555555ULL;
  const __m512i round = _mm512_set1_epi32(ROUND);
  const int n = ow * CHANNELS;
  for (int g = 0; g < plan->groups; g++) {
    const __m512i window = _mm512_maskz_loadu_epi8(plan->load[g], row + plan->base[g]);
    const uint8_t *control = plan->control + (size_t)g * 128;
    const int16_t *weights = plan->weights + (size_t)g * 64;
    const __m512i p01 = _mm512_maskz_permutexvar_epi8(even, _mm512_load_si512(control), window);
    const __m512i p23 = _mm512_maskz_permutexvar_epi8(even, _mm512_load_si512(control + 64), window);
    __m512i sum = _mm512_add_epi32(_mm512_madd_epi16(p01, _mm512_load_si512(weights)), _mm512_madd_epi16(p23, _mm512_load_si512(weights + 32)));
    sum = _mm512_srai_epi32(_mm512_add_epi32(sum, round), INTERPOLATE_SHIFT);
    const int left = n - g * GROUP;
    if (left >= GROUP) _mm512_storeu_si512(o + g * GROUP, sum);
    else _mm512_mask_storeu_epi32(o + g * GROUP, (__mmask16)((1u << left) - 1), sum);
  }
}

/* The rows across down to bytes, 16 values at a time: the same sums, and vpmovusdb after a max
 * with 0 clips to 0..255 as the portable loop does. */
__attribute__((target("avx512f")))
static void down_row_avx512(const int32_t *const r[4], const int c[4], uint8_t *o, int n) {
  const __m512i c0 = _mm512_set1_epi32(c[0]), c1 = _mm512_set1_epi32(c[1]), c2 = _mm512_set1_epi32(c[2]), c3 = _mm512_set1_epi32(c[3]);
  const __m512i round = _mm512_set1_epi32(ROUND), zero = _mm512_setzero_si512();
  for (int k = 0; k < n; k += 16) {
    const __mmask16 lanes = n - k >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - k)) - 1);
    __m512i v = _mm512_mullo_epi32(c0, _mm512_maskz_loadu_epi32(lanes, r[0] + k));
    v = _mm512_add_epi32(v, _mm512_mullo_epi32(c1, _mm512_maskz_loadu_epi32(lanes, r[1] + k)));
    v = _mm512_add_epi32(v, _mm512_mullo_epi32(c2, _mm512_maskz_loadu_epi32(lanes, r[2] + k)));
    v = _mm512_add_epi32(v, _mm512_mullo_epi32(c3, _mm512_maskz_loadu_epi32(lanes, r[3] + k)));
    v = _mm512_max_epi32(_mm512_srai_epi32(_mm512_add_epi32(v, round), INTERPOLATE_SHIFT), zero);
    _mm512_mask_cvtusepi32_storeu_epi8(o + k, lanes, v);
  }
}

/* Set as the addon loads, before any task runs on libuv's threads. */
static int have_vbmi;

static void detect_cpu(void) {
  __builtin_cpu_init();
  have_vbmi = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vbmi");
}
#else
static void detect_cpu(void) {}
#endif

/* Exact integer sums: the AVX2 clone gives the same bytes, in wider vectors. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("avx2", "default")))
#endif
static void enlarge(enlarge_task *task) {
  const int w = task->width, h = task->height, ow = task->out_width, oh = task->out_height;
  const double hscale = 1.0 / ((double)w / ow);
  const double vscale = 1.0 / ((double)h / oh);
  const double tmp = 1.0 / (hscale * vscale - 0.0 * 0.0);
  const double ia = tmp * vscale;
  const double id = tmp * hscale;
  const double idx = CENTRE_DISPLACEMENT - 1;
  const double idy = CENTRE_DISPLACEMENT - 1;
  int table[TRANSFORM_SCALE + 1][4];
  const size_t stride = (size_t)ow * CHANNELS;
  int *xi = malloc(sizeof(int) * 4 * ow), *xw = malloc(sizeof(int) * 4 * ow);
  int *yi = malloc(sizeof(int) * 4 * oh), *yw = malloc(sizeof(int) * 4 * oh);
  /* Rows across, computed as the rows down first need them. An output row's 4 taps are one source
   * row and the next 3, clamped, so they fall in different slots of 4 (row % 4), and a slot's row is
   * needed by no later output row once a later row has taken it: the rows stay in cache. */
  int32_t *ring = malloc(sizeof(int32_t) * stride * 4);
  int held[4] = {-1, -1, -1, -1};
#ifdef ACROSS_VBMI
  across_plan plan = {0};
  int vbmi = 0;
#endif
  if (!xi || !xw || !yi || !yw || !ring) {
    task->error = "out of memory";
    goto done;
  }
  catmull_weights(table);

  double ix = 0.0;
  ix -= idx;
  ix += 1;
  for (int x = 0; x < ow; x++, ix += ia) taps(ix, w, table, xi + 4 * x, xw + 4 * x);
#ifdef ACROSS_VBMI
  vbmi = task->vector && have_vbmi && make_plan(&plan, w, ow, xi, xw);
#endif
  for (int y = 0; y < oh; y++) {
    double iy = id * y;
    iy -= idy;
    iy += 1;
    taps(iy, h, table, yi + 4 * y, yw + 4 * y);
  }

  for (int y = 0; y < oh; y++) {
    const int *i = yi + 4 * y, *c = yw + 4 * y;
    const int32_t *r[4];
    for (int k = 0; k < 4; k++) {
      const int slot = i[k] & 3;
      if (held[slot] != i[k]) {
        const uint8_t *row = task->src + (size_t)i[k] * w * CHANNELS;
#ifdef ACROSS_VBMI
        if (vbmi) across_row_vbmi(row, ow, &plan, ring + slot * stride);
        else
#endif
          across_row(row, ow, xi, xw, ring + slot * stride);
        held[slot] = i[k];
      }
      r[k] = ring + slot * stride;
    }
    uint8_t *o = task->out + y * stride;
#ifdef ACROSS_VBMI
    if (vbmi) {
      down_row_avx512(r, c, o, (int)stride);
      continue;
    }
#endif
    const int32_t *r0 = r[0], *r1 = r[1], *r2 = r[2], *r3 = r[3];
    const int32_t c0 = c[0], c1 = c[1], c2 = c[2], c3 = c[3];
    for (size_t k = 0; k < stride; k++) {
      const int32_t v = (c0 * r0[k] + c1 * r1[k] + c2 * r2[k] + c3 * r3[k] + ROUND) >> INTERPOLATE_SHIFT;
      o[k] = v < 0 ? 0 : v > 255 ? 255 : (uint8_t)v;
    }
  }

done:
#ifdef ACROSS_VBMI
  free_plan(&plan);
#endif
  free(xi);
  free(xw);
  free(yi);
  free(yw);
  free(ring);
}

static void execute(napi_env env, void *data) {
  (void)env;
  enlarge_task *task = (enlarge_task *)data;
  if (!task->jpeg) {
    enlarge(task);
    return;
  }
  uint8_t *pixels = decode_rgb_alloc(task->jpeg, task->jpeg_length, (unsigned)task->width, (unsigned)task->height, task->message, sizeof task->message);
  if (!pixels) {
    task->error = task->message;
    return;
  }
  task->src = pixels;
  enlarge(task);
  free(pixels);
}

static void complete(napi_env env, napi_status status, void *data) {
  enlarge_task *task = (enlarge_task *)data;
  napi_value result;
  if (status != napi_ok && !task->error) task->error = "enlargement cancelled";
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

static int dimension(napi_env env, napi_value value, int *out) {
  uint32_t v;
  if (napi_get_value_uint32(env, value, &v) != napi_ok || v == 0 || v > 65535) return 0;
  *out = (int)v;
  return 1;
}

/* enlargeBicubic(src, ...) and enlargeJpeg(jpeg, ...): the same arguments, the first one pixels or a JPEG of width x height. */
static napi_value start_enlarge(napi_env env, napi_callback_info info, int from_jpeg) {
  size_t argc = 7;
  napi_value argv[7], promise, name;
  uint8_t *src, *out;
  size_t src_length, out_length;
  enlarge_task *task = calloc(1, sizeof *task);
  if (task == NULL) {
    napi_throw_error(env, NULL, "out of memory");
    return NULL;
  }
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 6 || !uint8_view(env, argv[0], &src, &src_length) || !dimension(env, argv[1], &task->width) || !dimension(env, argv[2], &task->height) ||
      !uint8_view(env, argv[3], &out, &out_length) || !dimension(env, argv[4], &task->out_width) || !dimension(env, argv[5], &task->out_height)) {
    free(task);
    napi_throw_type_error(env, NULL, "expected (src: Uint8Array, width, height, out: Uint8Array, outWidth, outHeight)");
    return NULL;
  }
  if ((!from_jpeg && src_length != (size_t)task->width * task->height * CHANNELS) || out_length != (size_t)task->out_width * task->out_height * CHANNELS ||
      !(1.0 / ((double)task->width / task->out_width) > 1.0) || !(1.0 / ((double)task->height / task->out_height) > 1.0)) {
    free(task);
    napi_throw_range_error(env, NULL, "buffers must hold width x height x 3 and outWidth x outHeight x 3 bytes, and both sides must grow");
    return NULL;
  }
  if (from_jpeg) {
    task->jpeg = src;
    task->jpeg_length = src_length;
  } else {
    task->src = src;
  }
  task->out = out;
  bool vector = true;
  if (argc >= 7 && napi_get_value_bool(env, argv[6], &vector) != napi_ok) vector = true;
  task->vector = vector;
  napi_create_reference(env, argv[0], 1, &task->src_ref);
  napi_create_reference(env, argv[3], 1, &task->out_ref);
  napi_create_promise(env, &task->deferred, &promise);
  napi_create_string_utf8(env, "cvserve.enlargeBicubic", NAPI_AUTO_LENGTH, &name);
  napi_create_async_work(env, NULL, name, execute, complete, task, &task->work);
  napi_queue_async_work(env, task->work);
  return promise;
}

static napi_value enlarge_js(napi_env env, napi_callback_info info) {
  return start_enlarge(env, info, 0);
}

static napi_value enlarge_jpeg_js(napi_env env, napi_callback_info info) {
  return start_enlarge(env, info, 1);
}

void register_enlarge(napi_env env, napi_value exports) {
  napi_value fn;
  detect_cpu();
  napi_create_function(env, "enlargeBicubic", NAPI_AUTO_LENGTH, enlarge_js, NULL, &fn);
  napi_set_named_property(env, exports, "enlargeBicubic", fn);
  napi_create_function(env, "enlargeJpeg", NAPI_AUTO_LENGTH, enlarge_jpeg_js, NULL, &fn);
  napi_set_named_property(env, exports, "enlargeJpeg", fn);
}
