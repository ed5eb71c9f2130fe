#ifndef CVSERVE_ENLARGE_H
#define CVSERVE_ENLARGE_H
#include <node_api.h>

/* Adds enlargeBicubic (enlarge.c) to the addon's exports. */
void register_enlarge(napi_env env, napi_value exports);

#endif
