#ifndef CVSERVE_PACK_H
#define CVSERVE_PACK_H
#include <node_api.h>

/* Adds packFloat32 (pack.c) to the addon's exports. */
void register_pack(napi_env env, napi_value exports);

#endif
