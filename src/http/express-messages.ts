import { IncomingMessage, ServerResponse } from 'node:http';
import type { Express } from 'express';

/** The request and response classes Node's HTTP server constructs (its `IncomingMessage` / `ServerResponse` options). */
export interface MessageClasses {
  IncomingMessage: typeof IncomingMessage;
  ServerResponse: typeof ServerResponse;
}

/**
 * Requests and responses born with the app's prototypes. Express's `app.handle` gives every request
 * and response the prototype `app.request` / `app.response` with Object.setPrototypeOf; on V8 that
 * change to a live object moves it to a new hidden class on every request, which turns the property
 * lookups of everything that touches req and res (Express, its middleware, Node's HTTP code)
 * megamorphic, and keeps each finished request alive through the young-generation collections until
 * a full one: an Express `GET` answering `{ok: true}` served 7,000 requests/s with 3.8 MB of each
 * scavenge surviving, and 25,000-28,000/s with none this way (bench/NOTES.md, issue 24's thirteenth
 * look).
 *
 * Subclasses of Node's classes, each prototype placed in front of the app's and made the app's
 * `request` / `response`: Node's server builds the subclasses, Express finds the prototype already in
 * place and V8 changes nothing, and requests from any other server (supertest's) still get Express's
 * methods through the chain. Subclasses rather than plain functions with that prototype: V8 sizes a
 * subclass's objects for the properties Node's constructor adds (a plain function made /ping's
 * answers 20% slower).
 */
export function adoptMessageClasses(app: Express): MessageClasses {
  class AppRequest extends IncomingMessage {}
  class AppResponse extends ServerResponse {}
  Object.setPrototypeOf(AppRequest.prototype, app.request);
  Object.setPrototypeOf(AppResponse.prototype, app.response);
  app.request = AppRequest.prototype as unknown as Express['request'];
  app.response = AppResponse.prototype as unknown as Express['response'];
  return { IncomingMessage: AppRequest, ServerResponse: AppResponse as typeof ServerResponse };
}
