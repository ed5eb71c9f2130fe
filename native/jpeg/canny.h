#ifndef CVSERVE_CANNY_H
#define CVSERVE_CANNY_H
#include <node_api.h>

/* Adds cannySync and cannyJpegSync (canny.c) to the addon's exports. */
void register_canny(napi_env env, napi_value exports);

#endif
