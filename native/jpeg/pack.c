/*
 * Interleaved 8-bit pixels into one image of a float32 model input: value = pixel × a[c] + b[c]
 * for model channel c, read from source channel from[c], planar (NCHW) or interleaved (NHWC).
 * The same arithmetic as packImage in src/image/preprocess.ts (in doubles, rounded to float once;
 * the build turns off fused multiply-add so arm64 rounds the same way), an eighth of its time on the
 * main thread: a 416x416 detector input costs 2 ms in JavaScript.
 *
 * packFloat32(rgb: Uint8Array, pixels, out: Float32Array, offset, nchw: boolean,
 *             from0, from1, from2, a0, a1, a2, b0, b1, b2): void
 *
 * packFloat32SpaceToDepth(rgb, width, height, out, offset, blocks: Int32Array,
 *                         from0, from1, from2, a0, a1, a2, b0, b1, b2): void
 * The same values laid out as a graph's space-to-depth layer leaves them (YOLOX's Focus): planar,
 * 4 x 3 channels of (width / 2) x (height / 2), block g taking the pixels at (2y + dy, 2x + dx)
 * for blocks = [dy0, dx0, ..., dy3, dx3]. With each offset once (YOLOX's order and any other), rows go
 * 16 pixel pairs at a time where the CPU has AVX-512 VBMI: the same doubles, rounded once (a 416x416
 * frame in 127 us instead of 175).
 */
#include <node_api.h>
#include <stddef.h>
#include <stdint.h>
#include "pack.h"

#define ARGS 14

static void pack(const uint8_t *rgb, size_t pixels, float *out, int nchw, const int from[3], const double a[3], const double b[3]) {
  float value[256];
  for (int c = 0; c < 3; c++) {
    const uint8_t *src = rgb + from[c];
    /* A pixel has 256 values: each one's float once, then a lookup per pixel. */
    for (int v = 0; v < 256; v++) value[v] = (float)(v * a[c] + b[c]);
    if (nchw) {
      float *dst = out + (size_t)c * pixels;
      for (size_t i = 0; i < pixels; i++) dst[i] = value[src[3 * i]];
    } else {
      float *dst = out + c;
      for (size_t i = 0; i < pixels; i++) dst[3 * i] = value[src[3 * i]];
    }
  }
}

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#include <immintrin.h>
#define PACK_VBMI 1
/* Set as the addon loads (register_pack), before any call. */
static int have_vbmi;

/* 16 values of one stream: bytes to doubles, × a + b as the table computes them (no fused
 * multiply-add), rounded to float once. */
__attribute__((target("avx512f,avx512bw,avx512vbmi")))
static inline void store_values(__m512i bytes, double a, double b, float *dst) {
  const __m512i ints = _mm512_cvtepu8_epi32(_mm512_castsi512_si128(bytes));
  const __m512d va = _mm512_set1_pd(a), vb = _mm512_set1_pd(b);
  const __m512d lo = _mm512_add_pd(_mm512_mul_pd(_mm512_cvtepi32_pd(_mm512_castsi512_si256(ints)), va), vb);
  const __m512d hi = _mm512_add_pd(_mm512_mul_pd(_mm512_cvtepi32_pd(_mm512_extracti64x4_epi64(ints, 1)), va), vb);
  _mm256_storeu_ps(dst, _mm512_cvtpd_ps(lo));
  _mm256_storeu_ps(dst + 8, _mm512_cvtpd_ps(hi));
}

/* A row's pixel pairs, 16 at a time (96 bytes): one byte permute per stream picks its 16 bytes
 * (left or right pixel of each pair, one channel). Returns the pairs done; the caller does the rest. */
__attribute__((target("avx512f,avx512bw,avx512vbmi")))
static size_t pack_pairs_vbmi(const uint8_t *row, size_t pairs, float *const streams[6], const int from[3], const double a[3], const double b[3]) {
  __m512i pick[6];
  for (int s = 0; s < 6; s++) {
    uint8_t index[64] = {0};
    for (int k = 0; k < 16; k++) index[k] = (uint8_t)(6 * k + 3 * (s / 3) + from[s % 3]);
    pick[s] = _mm512_loadu_si512(index);
  }
  size_t x = 0;
  for (; x + 16 <= pairs; x += 16) {
    const uint8_t *p = row + 6 * x;
    const __m512i first = _mm512_loadu_si512(p);
    const __m512i rest = _mm512_maskz_loadu_epi8(0xffffffffULL, p + 64);
    for (int s = 0; s < 6; s++) store_values(_mm512_permutex2var_epi8(first, pick[s], rest), a[s % 3], b[s % 3], streams[s] + x);
  }
  return x;
}
#endif

static void pack_space_to_depth(const uint8_t *rgb, size_t width, size_t height, float *out, const int blocks[8], const int from[3], const double a[3], const double b[3]) {
  float value[3][256];
  const size_t w2 = width / 2, h2 = height / 2, plane = w2 * h2;
  for (int c = 0; c < 3; c++)
    for (int v = 0; v < 256; v++) value[c][v] = (float)(v * a[c] + b[c]);
  /* Each block's planes, by the block's offset. */
  float *planes[2][2][3] = {{{0}}};
  int seen = 0;
  for (int g = 0; g < 4; g++) {
    seen |= 1 << (blocks[2 * g] * 2 + blocks[2 * g + 1]);
    for (int c = 0; c < 3; c++) planes[blocks[2 * g]][blocks[2 * g + 1]][c] = out + (size_t)(g * 3 + c) * plane;
  }
  if (seen == 0xf) {
    /* The four offsets once each: one pass over the pixels, row by row. */
    for (size_t y = 0; y < h2; y++) {
      for (int dy = 0; dy < 2; dy++) {
        const uint8_t *row = rgb + (2 * y + dy) * width * 3;
        float *l0 = planes[dy][0][0] + y * w2, *l1 = planes[dy][0][1] + y * w2, *l2 = planes[dy][0][2] + y * w2;
        float *r0 = planes[dy][1][0] + y * w2, *r1 = planes[dy][1][1] + y * w2, *r2 = planes[dy][1][2] + y * w2;
        size_t x = 0;
#ifdef PACK_VBMI
        if (have_vbmi) {
          float *const streams[6] = {l0, l1, l2, r0, r1, r2};
          x = pack_pairs_vbmi(row, w2, streams, from, a, b);
        }
#endif
        for (; x < w2; x++) {
          const uint8_t *p = row + 6 * x;
          l0[x] = value[0][p[from[0]]];
          l1[x] = value[1][p[from[1]]];
          l2[x] = value[2][p[from[2]]];
          r0[x] = value[0][p[3 + from[0]]];
          r1[x] = value[1][p[3 + from[1]]];
          r2[x] = value[2][p[3 + from[2]]];
        }
      }
    }
    return;
  }
  for (int c = 0; c < 3; c++) {
    for (int g = 0; g < 4; g++) {
      float *dst = out + (size_t)(g * 3 + c) * plane;
      for (size_t y = 0; y < h2; y++) {
        const uint8_t *row = rgb + ((2 * y + blocks[2 * g]) * width + blocks[2 * g + 1]) * 3 + from[c];
        for (size_t x = 0; x < w2; x++) *dst++ = value[c][row[6 * x]];
      }
    }
  }
}

/* The channel arguments shared by both calls, from argv[first]: from0..2, a0..2, b0..2. */
static int channel_args(napi_env env, napi_value *argv, int from[3], double a[3], double b[3]) {
  for (int c = 0; c < 3; c++) {
    if (napi_get_value_int32(env, argv[c], &from[c]) != napi_ok || from[c] < 0 || from[c] > 2 || napi_get_value_double(env, argv[3 + c], &a[c]) != napi_ok ||
        napi_get_value_double(env, argv[6 + c], &b[c]) != napi_ok)
      return 0;
  }
  return 1;
}

#define S2D_ARGS 15

static napi_value pack_space_to_depth_js(napi_env env, napi_callback_info info) {
  size_t argc = S2D_ARGS;
  napi_value argv[S2D_ARGS], buffer;
  napi_typedarray_type rgb_type, out_type, blocks_type;
  size_t rgb_length, out_length, blocks_length, offset;
  void *rgb, *out, *blocks;
  uint32_t width, height, base;
  int from[3];
  double a[3], b[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc != S2D_ARGS || napi_get_typedarray_info(env, argv[0], &rgb_type, &rgb_length, &rgb, &buffer, &offset) != napi_ok || rgb_type != napi_uint8_array ||
      napi_get_value_uint32(env, argv[1], &width) != napi_ok || napi_get_value_uint32(env, argv[2], &height) != napi_ok ||
      napi_get_typedarray_info(env, argv[3], &out_type, &out_length, &out, &buffer, &offset) != napi_ok || out_type != napi_float32_array ||
      napi_get_value_uint32(env, argv[4], &base) != napi_ok ||
      napi_get_typedarray_info(env, argv[5], &blocks_type, &blocks_length, &blocks, &buffer, &offset) != napi_ok || blocks_type != napi_int32_array || blocks_length != 8 ||
      !channel_args(env, argv + 6, from, a, b)) {
    napi_throw_type_error(env, NULL, "expected (rgb: Uint8Array, width, height, out: Float32Array, offset, blocks: Int32Array(8), from0..2, a0..2, b0..2)");
    return NULL;
  }
  for (int i = 0; i < 8; i++) {
    if (((int32_t *)blocks)[i] != 0 && ((int32_t *)blocks)[i] != 1) {
      napi_throw_range_error(env, NULL, "block offsets are 0 or 1");
      return NULL;
    }
  }
  if (width % 2 || height % 2 || rgb_length < (size_t)width * height * 3 || out_length < (size_t)base + (size_t)width * height * 3) {
    napi_throw_range_error(env, NULL, "width and height must be even, rgb and out large enough for them");
    return NULL;
  }
  pack_space_to_depth(rgb, width, height, (float *)out + base, (int32_t *)blocks, from, a, b);
  return NULL;
}

static napi_value pack_js(napi_env env, napi_callback_info info) {
  size_t argc = ARGS;
  napi_value argv[ARGS];
  napi_typedarray_type rgb_type, out_type;
  size_t rgb_length, out_length, offset;
  void *rgb, *out;
  napi_value buffer;
  uint32_t pixels, base;
  bool nchw;
  int from[3];
  double a[3], b[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int ok = argc == ARGS && napi_get_typedarray_info(env, argv[0], &rgb_type, &rgb_length, &rgb, &buffer, &offset) == napi_ok && rgb_type == napi_uint8_array &&
           napi_get_value_uint32(env, argv[1], &pixels) == napi_ok &&
           napi_get_typedarray_info(env, argv[2], &out_type, &out_length, &out, &buffer, &offset) == napi_ok && out_type == napi_float32_array &&
           napi_get_value_uint32(env, argv[3], &base) == napi_ok && napi_get_value_bool(env, argv[4], &nchw) == napi_ok && channel_args(env, argv + 5, from, a, b);
  if (!ok) {
    napi_throw_type_error(env, NULL, "expected (rgb: Uint8Array, pixels, out: Float32Array, offset, nchw, from0..2, a0..2, b0..2)");
    return NULL;
  }
  if (rgb_length < (size_t)pixels * 3 || out_length < (size_t)base + (size_t)pixels * 3) {
    napi_throw_range_error(env, NULL, "rgb or out is too small for the pixels");
    return NULL;
  }
  pack(rgb, pixels, (float *)out + base, nchw, from, a, b);
  return NULL;
}

void register_pack(napi_env env, napi_value exports) {
  napi_value fn;
#ifdef PACK_VBMI
  __builtin_cpu_init();
  have_vbmi = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vbmi");
#endif
  napi_create_function(env, "packFloat32", NAPI_AUTO_LENGTH, pack_js, NULL, &fn);
  napi_set_named_property(env, exports, "packFloat32", fn);
  napi_create_function(env, "packFloat32SpaceToDepth", NAPI_AUTO_LENGTH, pack_space_to_depth_js, NULL, &fn);
  napi_set_named_property(env, exports, "packFloat32SpaceToDepth", fn);
}
