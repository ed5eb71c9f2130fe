import type { Config } from '../config.js';
import type { DecodeBudget } from '../image/decode-memory.js';
import { createUrlFetcher, type UrlFetchHooks } from '../fetch/url-fetch.js';
import { ResponseCache } from '../resources/answer-cache.js';
import { costLimits } from '../resources/cost.js';
import type { PipelineServices } from '../resources/pipeline.js';

/** What every transport's pipeline is given: the limits, the decode budget, the ?url= fetcher and the optional answer cache (one per app or CLI run). */
export function createPipelineServices(config: Config, decodeBudget: DecodeBudget, urlHooks?: UrlFetchHooks): PipelineServices {
  return {
    limits: { ...costLimits(config), maxPixels: config.maxPixels },
    jpegDecoder: config.jpegDecoder,
    decodeBudget,
    fetchUrl: createUrlFetcher(config, urlHooks),
    cache: config.responseCacheMb > 0 ? new ResponseCache(config.responseCacheMb * 1024 * 1024) : undefined,
  };
}
