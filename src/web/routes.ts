/** The playground's view of /openapi.json: the resource routes and their parameters. No DOM, so Node tests can use it. */
import { ROUTE_INFO_KEY, type CvServeRouteInfo } from './route-info.js';

export type JsonSchema = { type?: string | string[]; enum?: unknown[]; default?: unknown; minimum?: number; maximum?: number; items?: JsonSchema };

export interface ParamSpec {
  name: string;
  description: string;
  schema: JsonSchema;
}

export interface RouteSpec {
  name: string;
  summary: string;
  description: string;
  output: 'json' | 'image';
  /** A JSON route whose boxes can be drawn on the input (draw=true). */
  drawable: boolean;
  canPost: boolean;
  params: ParamSpec[];
}

/** Resources are the paths carrying the route-info extension; their parameters are the operation's query parameters. */
export function routesFrom(doc: { paths: Record<string, Record<string, unknown>> }): RouteSpec[] {
  const out: RouteSpec[] = [];
  for (const [path, item] of Object.entries(doc.paths)) {
    const info = item[ROUTE_INFO_KEY] as CvServeRouteInfo | undefined;
    if (!info) continue;
    const get = item.get as { parameters?: (ParamSpec & { in: string })[] } | undefined;
    const post = item.post as { parameters?: (ParamSpec & { in: string })[] } | undefined;
    const params = (post ?? get)?.parameters?.filter((p) => p.in === 'query' && p.name !== 'url') ?? [];
    out.push({
      name: path.slice(1),
      summary: String(item.summary ?? ''),
      description: String(item.description ?? ''),
      output: info.output,
      drawable: info.drawable === true,
      canPost: info.methods.includes('POST'),
      params: params.map((p) => ({ name: p.name, description: p.description ?? '', schema: p.schema ?? {} })),
    });
  }
  return out;
}
