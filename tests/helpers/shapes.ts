/** The hostile-shape images live with the scripts (the soak sends them too); the tests use the same ones. */
export { flatImage, flatPng, MAX_SIDE, type ShapeFormat } from '../../scripts/lib/shapes.js';
