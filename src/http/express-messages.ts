import { IncomingMessage, ServerResponse } from 'node:http';
import type { Express } from 'express';

/** The request and response classes Node's HTTP server constructs (its `IncomingMessage` / `ServerResponse` options). */
export interface MessageClasses {
  IncomingMessage: typeof IncomingMessage;
  ServerResponse: typeof ServerResponse;
}

/**
 * A constructor that builds `base`'s objects with `prototype` as their prototype from the start:
 * `new` makes the object from `prototype`, and `base` (Node's function constructor) initialises it
 * as it would its own. Reflect.construct with a new.target does the same for classes too, but V8
 * takes a slow path for it: /healthz served 4,300 requests/s that way against 5,100 without any of
 * this, and 14,000 this way. Null for a class, which cannot be called on an object of ours.
 */
export function withPrototype<T extends abstract new (...args: never[]) => object>(base: T, prototype: object): T | null {
  if (/^class\b/.test(Function.prototype.toString.call(base))) return null;
  const Built = function (this: object, ...args: unknown[]) {
    Reflect.apply(base as unknown as (...a: unknown[]) => void, this, args);
  };
  Built.prototype = prototype;
  return Built as unknown as T;
}

/**
 * Requests and responses born with the app's prototypes. Express's `app.handle` gives every request
 * and response the prototype `app.request` / `app.response` with Object.setPrototypeOf; on V8 that
 * change to a live object moves it to a new hidden class on every request, which turns the property
 * lookups of everything that touches req and res (Express, its middleware, Node's HTTP code)
 * megamorphic, and keeps each finished request alive through the young-generation collections until
 * a full one: an Express `GET` answering `{ok: true}` served 8,900 requests/s with 3.8 MB of each
 * scavenge surviving, and 25,500/s with none once the objects were built with the prototypes Express
 * sets (bench/NOTES.md, issue 24's thirteenth look). Express then finds the prototype already in
 * place, and V8 does nothing. Empty (Express as before) where Node's classes are ES classes.
 */
export function expressMessageClasses(app: Pick<Express, 'request' | 'response'>): Partial<MessageClasses> {
  const request = withPrototype(IncomingMessage, app.request);
  const response = withPrototype(ServerResponse, app.response);
  return request && response ? { IncomingMessage: request, ServerResponse: response } : {};
}
