import type { Config } from './config.js';
import { closeEngines, createEngines } from './engines/engines.js';
import { createFaceService } from './faces/service.js';
import { DecodeBudget } from './image/decode-memory.js';
import type { ServiceSet } from './resources/contract.js';

/**
 * Start-up wiring of what resources run on: the engines (worker pools, model store) and the
 * services over them (the face gallery over the face engine, the decode memory budget). The app and the CLI both call it.
 */
export function createServices(config: Config): ServiceSet {
  const engines = createEngines(config);
  const decodeBudget = new DecodeBudget(config.decodeMemoryBytes);
  const faces = createFaceService(config, engines.face, decodeBudget);
  if (config.facePreload) void faces.open().catch(() => {}); // a failure shows in faces.status() and on each face request
  return { ...engines, faces, decodeBudget };
}

/** Closes the services, then the engines under them. */
export async function closeServices(services: ServiceSet): Promise<void> {
  await services.faces.close();
  await closeEngines(services);
}
