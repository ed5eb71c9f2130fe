import { customModels, type Manifest } from '../models/manifest.js';
import { createObjectDetectionResource } from '../resources/object-detection.js';
import type { AnyResource } from '../resources/contract.js';
import { createPredictResource } from '../resources/predict.js';

/**
 * The resources behind the dialect's routes: the app's own (detection is /catdetection's, faces
 * /facedetection's and /facerecognition's, scene /predict's, super-resolution /upscale's), plus a
 * detector resource for every other manifest detector (custom models) and, when the manifest's
 * `routes` name a `scene` classifier (e.g. a Places365 model), a classifier for it.
 */
export interface DialectResources {
  detection?: AnyResource;
  face?: AnyResource;
  recognize?: AnyResource;
  scene?: AnyResource;
  upscale?: AnyResource;
  alpr?: AnyResource;
  ocr?: AnyResource;
  /** Custom model name (the manifest id) → its detector, in manifest order. */
  custom: Map<string, AnyResource>;
  /** The resources made here: initialise and close them with the app's. */
  own: AnyResource[];
}

/** The manifest `routes` key naming the classifier of /v1/vision/scene. */
export const SCENE_ROUTE = 'scene';

export function dialectResources(manifest: Manifest, resources: readonly AnyResource[]): DialectResources {
  const byName = (name: string) => resources.find((r) => r.name === name);
  const own: AnyResource[] = [];
  const taken = new Set(resources.map((r) => r.name));
  /** A resource name of its own (names key the response cache and appear in messages). */
  const uniqueName = (base: string) => {
    let name = base;
    for (let i = 2; taken.has(name); i++) name = `${base}-${i}`;
    taken.add(name);
    return name;
  };

  const detection = byName('catdetection');
  const custom = new Map<string, AnyResource>();
  for (const model of customModels(manifest)) {
    if (detection && manifest.routes.catdetection === model.id) {
      custom.set(model.id, detection); // the same model: the same resource, loaded once
      continue;
    }
    const resource = createObjectDetectionResource({ modelId: model.id, name: uniqueName(`deepstack-custom-${model.id.replace(/[^a-z0-9-]/g, '-')}`) });
    own.push(resource);
    custom.set(model.id, resource);
  }

  let scene = byName('predict');
  const sceneModel = manifest.routes[SCENE_ROUTE];
  if (sceneModel !== undefined) {
    scene = createPredictResource({ modelId: sceneModel, name: uniqueName('deepstack-scene') });
    own.push(scene);
  }

  return { detection, face: byName('facedetection'), recognize: byName('facerecognition'), scene, upscale: byName('upscale'), alpr: byName('alpr'), ocr: byName('ocr'), custom, own };
}
