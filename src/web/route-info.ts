/**
 * The OpenAPI extension that marks a path as a resource route and tells the playground what it
 * needs beyond plain OpenAPI. Written by src/http/openapi.ts, read by the playground (routes.ts):
 * this module imports nothing, so browsers can load it.
 */

export const ROUTE_INFO_KEY = 'x-cvserve';

export interface CvServeRouteInfo {
  resource: string;
  output: 'json' | 'image';
  drawable: boolean;
  rendersImage: boolean;
  methods: readonly ('GET' | 'POST')[];
}
