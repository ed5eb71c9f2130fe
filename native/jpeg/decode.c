/*
 * JPEG to RGB with the system's libjpeg (libjpeg-turbo on Debian: the library OpenCV's imdecode
 * uses), exact integer IDCT and fancy upsampling, libjpeg's defaults and sharp's. The work runs on
 * libuv's thread pool; the caller owns both buffers and has checked the header against its limits.
 *
 * decodeRgb(jpeg: Uint8Array, out: Uint8Array, width: number, height: number): Promise<void>
 * (decodeRgbSync, below, for worker threads) rejects when the file is not a clean 8-bit JPEG of exactly width x height with 1 or 3
 * components, or libjpeg emits any warning (truncated or corrupt data): the caller then decodes
 * with sharp, whose answer (pixels or error) stands.
 */
#include <node_api.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jpeglib.h>
#include "canny.h"
#include "decode.h"
#include "enlarge.h"
#include "reduce.h"
#include "pack.h"

typedef struct {
  struct jpeg_error_mgr pub;
  jmp_buf jump;
  int warned;
} error_state;

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  napi_ref input_ref;
  napi_ref output_ref;
  const unsigned char *input;
  size_t input_length;
  unsigned char *output;
  size_t output_length;
  unsigned width;
  unsigned height;
  char error[JMSG_LENGTH_MAX + 64];
} decode_task;

static void on_error(j_common_ptr cinfo) {
  error_state *state = (error_state *)cinfo->err;
  longjmp(state->jump, 1);
}

static void on_message(j_common_ptr cinfo, int level) {
  if (level < 0) ((error_state *)cinfo->err)->warned = 1;
}

static void decode_rgb(decode_task *task) {
  struct jpeg_decompress_struct cinfo;
  error_state state;
  JSAMPROW *volatile rows = NULL;
  memset(&cinfo, 0, sizeof cinfo);
  cinfo.err = jpeg_std_error(&state.pub);
  state.pub.error_exit = on_error;
  state.pub.emit_message = on_message;
  state.warned = 0;
  if (setjmp(state.jump)) {
    char message[JMSG_LENGTH_MAX];
    (*cinfo.err->format_message)((j_common_ptr)&cinfo, message);
    snprintf(task->error, sizeof task->error, "libjpeg: %s", message);
    jpeg_destroy_decompress(&cinfo);
    free(rows);
    return;
  }
  jpeg_create_decompress(&cinfo);
  jpeg_mem_src(&cinfo, task->input, (unsigned long)task->input_length);
  jpeg_read_header(&cinfo, TRUE);
  if (cinfo.jpeg_color_space != JCS_GRAYSCALE && cinfo.jpeg_color_space != JCS_YCbCr && cinfo.jpeg_color_space != JCS_RGB) {
    snprintf(task->error, sizeof task->error, "colour space %d is not handled here", (int)cinfo.jpeg_color_space);
  } else if (cinfo.image_width != task->width || cinfo.image_height != task->height) {
    snprintf(task->error, sizeof task->error, "frame is %ux%u, the header said %ux%u", cinfo.image_width, cinfo.image_height, task->width, task->height);
  } else if ((size_t)task->width * task->height * 3 != task->output_length) {
    snprintf(task->error, sizeof task->error, "output buffer is %zu bytes", task->output_length);
  }
  if (task->error[0]) {
    jpeg_destroy_decompress(&cinfo);
    return;
  }
  cinfo.out_color_space = JCS_RGB;
  cinfo.dct_method = JDCT_ISLOW;
  cinfo.do_fancy_upsampling = TRUE;
  jpeg_start_decompress(&cinfo);
  rows = malloc(sizeof(JSAMPROW) * cinfo.output_height);
  if (rows == NULL) {
    snprintf(task->error, sizeof task->error, "out of memory");
    jpeg_destroy_decompress(&cinfo);
    return;
  }
  for (unsigned y = 0; y < cinfo.output_height; y++) rows[y] = task->output + (size_t)y * cinfo.output_width * 3;
  while (cinfo.output_scanline < cinfo.output_height && !state.warned) {
    jpeg_read_scanlines(&cinfo, rows + cinfo.output_scanline, cinfo.output_height - cinfo.output_scanline);
  }
  if (!state.warned) jpeg_finish_decompress(&cinfo);
  if (state.warned) {
    char message[JMSG_LENGTH_MAX];
    (*cinfo.err->format_message)((j_common_ptr)&cinfo, message);
    snprintf(task->error, sizeof task->error, "libjpeg warning: %s", message);
  }
  jpeg_destroy_decompress(&cinfo);
  free(rows);
}

unsigned char *decode_rgb_alloc(const unsigned char *jpeg, size_t length, unsigned width, unsigned height, char *error, size_t error_size) {
  decode_task task;
  memset(&task, 0, sizeof task);
  task.output_length = (size_t)width * height * 3;
  task.output = malloc(task.output_length);
  if (!task.output) {
    snprintf(error, error_size, "out of memory");
    return NULL;
  }
  task.input = jpeg;
  task.input_length = length;
  task.width = width;
  task.height = height;
  decode_rgb(&task);
  if (!task.error[0]) return task.output;
  snprintf(error, error_size, "%s", task.error);
  free(task.output);
  return NULL;
}

static void execute(napi_env env, void *data) {
  (void)env;
  decode_rgb((decode_task *)data);
}

static void complete(napi_env env, napi_status status, void *data) {
  decode_task *task = (decode_task *)data;
  napi_value result;
  if (status != napi_ok && !task->error[0]) snprintf(task->error, sizeof task->error, "decode cancelled");
  if (task->error[0]) {
    napi_value message;
    napi_create_string_utf8(env, task->error, NAPI_AUTO_LENGTH, &message);
    napi_create_error(env, NULL, message, &result);
    napi_reject_deferred(env, task->deferred, result);
  } else {
    napi_get_undefined(env, &result);
    napi_resolve_deferred(env, task->deferred, result);
  }
  napi_delete_reference(env, task->input_ref);
  napi_delete_reference(env, task->output_ref);
  napi_delete_async_work(env, task->work);
  free(task);
}

int uint8_view(napi_env env, napi_value value, unsigned char **data, size_t *length) {
  bool is_typedarray = false;
  napi_typedarray_type type;
  napi_value arraybuffer;
  size_t offset;
  if (napi_is_typedarray(env, value, &is_typedarray) != napi_ok || !is_typedarray) return 0;
  if (napi_get_typedarray_info(env, value, &type, length, (void **)data, &arraybuffer, &offset) != napi_ok) return 0;
  return type == napi_uint8_array;
}

/* (jpeg: Uint8Array, out: Uint8Array, width: number, height: number) into `task`; false (a TypeError
 * thrown) when the arguments are not that. */
static int read_args(napi_env env, napi_callback_info info, napi_value argv[4], decode_task *task) {
  size_t argc = 4;
  uint32_t width, height;
  unsigned char *input;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 4 || !uint8_view(env, argv[0], &input, &task->input_length) || !uint8_view(env, argv[1], &task->output, &task->output_length) ||
      napi_get_value_uint32(env, argv[2], &width) != napi_ok || napi_get_value_uint32(env, argv[3], &height) != napi_ok) {
    napi_throw_type_error(env, NULL, "expected (jpeg: Uint8Array, out: Uint8Array, width: number, height: number)");
    return 0;
  }
  task->input = input;
  task->width = width;
  task->height = height;
  return 1;
}

static napi_value decode_rgb_js(napi_env env, napi_callback_info info) {
  napi_value argv[4], promise, name;
  decode_task *task = calloc(1, sizeof *task);
  if (task == NULL) {
    napi_throw_error(env, NULL, "out of memory");
    return NULL;
  }
  if (!read_args(env, info, argv, task)) {
    free(task);
    return NULL;
  }
  napi_create_reference(env, argv[0], 1, &task->input_ref);
  napi_create_reference(env, argv[1], 1, &task->output_ref);
  napi_create_promise(env, &task->deferred, &promise);
  napi_create_string_utf8(env, "cvserve.jpeg.decodeRgb", NAPI_AUTO_LENGTH, &name);
  napi_create_async_work(env, NULL, name, execute, complete, task, &task->work);
  napi_queue_async_work(env, task->work);
  return promise;
}

/* decodeRgbSync(jpeg, out, width, height): string | null, for a worker thread decoding straight into
 * memory it owns (a WebAssembly heap): null when decoded, else why not. */
static napi_value decode_rgb_sync_js(napi_env env, napi_callback_info info) {
  napi_value argv[4], result;
  decode_task task;
  memset(&task, 0, sizeof task);
  if (!read_args(env, info, argv, &task)) return NULL;
  decode_rgb(&task);
  if (task.error[0]) napi_create_string_utf8(env, task.error, NAPI_AUTO_LENGTH, &result);
  else napi_get_null(env, &result);
  return result;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  napi_create_function(env, "decodeRgb", NAPI_AUTO_LENGTH, decode_rgb_js, NULL, &fn);
  napi_set_named_property(env, exports, "decodeRgb", fn);
  napi_create_function(env, "decodeRgbSync", NAPI_AUTO_LENGTH, decode_rgb_sync_js, NULL, &fn);
  napi_set_named_property(env, exports, "decodeRgbSync", fn);
  register_canny(env, exports);
  register_enlarge(env, exports);
  register_pack(env, exports);
  register_reduce(env, exports);
  return exports;
}
