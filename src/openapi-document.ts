import { deepstackOpenApiPaths } from './deepstack/openapi.js';
import { docsOpenApi } from './http/docs.js';
import { pingOpenApi } from './http/fast-ping.js';
import { healthOpenApi } from './http/health.js';
import { metricsOpenApi } from './http/metrics.js';
import { buildOpenApi, type Doc } from './http/openapi.js';
import { resourcePaths } from './http/resource-openapi.js';
import { customModels, type Manifest } from './models/manifest.js';
import type { AnyResource } from './resources/contract.js';

/**
 * The service's OpenAPI document: every router's own path items (docs, /ping, health, metrics, the
 * resources, the DeepStack dialect) in one frame. The HTTP service serves it and `cvserve openapi`
 * prints it: one function, so the two are always the same document.
 */
export function serviceOpenApi(resources: readonly AnyResource[], options: { apiKeys: boolean; manifest: Manifest }): Doc {
  return buildOpenApi(
    {
      ...docsOpenApi(),
      ...pingOpenApi(),
      ...healthOpenApi(),
      ...metricsOpenApi(),
      ...resourcePaths(resources),
      ...deepstackOpenApiPaths({ customModels: customModels(options.manifest).map((m) => m.id) }),
    },
    { apiKeys: options.apiKeys },
  );
}
