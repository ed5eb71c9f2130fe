#ifndef CVSERVE_REDUCE_H
#define CVSERVE_REDUCE_H
#include <node_api.h>

/* Adds reduceResize (reduce.c) to the addon's exports. */
void register_reduce(napi_env env, napi_value exports);

#endif
