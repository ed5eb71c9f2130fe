/**
 * cvserve as a library. The client (Node and browsers) is also its own entry, `cvserve/client`,
 * which loads nothing of the server.
 */
export {
  CvServeClient,
  CvServeError,
  type Answer,
  type Box,
  type CannyParams,
  type CatDetectionParams,
  type ClientOptions,
  type DetectionAnswer,
  type HaarParams,
  type ImageAnswer,
  type ImageArg,
  type InputWay,
  type Params,
  type PredictAnswer,
  type PredictParams,
  type RequestOptions,
  type UpscaleParams,
} from './client.js';
export { createApp, type CreateAppOptions, type CvServe } from './app.js';
export { loadConfig, testConfig, SETTINGS, type Config } from './config.js';
export { startServer } from './listen.js';
export { AppError, ERRORS, type ErrorCode } from './errors.js';
export { serviceOpenApi } from './openapi-document.js';
export { formatAnswer, type Answer as ResourceAnswer } from './resources/answer.js';
export type { AnyResource, InitContext, Resource, ResourceOutputSpec, ResourceResult, ResourceStatus, RunContext } from './resources/contract.js';
export { drawParam, formatParam, param } from './resources/params.js';
export { loadPlugins, type PluginKit } from './resources/plugins.js';
export { builtinResources } from './resources/registry.js';
