/** Whether something a route needs (a model file, a cascade, a worker pool) can be used now, and if not, why. */
export type Readiness = { ready: true } | { ready: false; reason: string };
