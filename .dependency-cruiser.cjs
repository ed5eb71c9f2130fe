/**
 * cvserve's layering, checked by dependency-cruiser in `npm test` (tests/design/layers.test.ts).
 * Data flows one way: transport (src/http, src/deepstack, src/cli.ts) → pipeline and resources
 * (src/resources) → engines and services (src/engines, src/faces, src/models) → leaves (src/image,
 * errors, config, readiness). A module may import its own layer and the layers below, never one
 * above; src/app.ts, src/server.ts, src/listen.ts, src/run.ts, src/cli.ts and src/openapi-document.ts
 * compose everything. README "Design" explains the rules.
 */
const TRANSPORTS = '^src/(http|deepstack|web)/';
const COMPOSITION = '^src/(app|server|listen|run|cli|index|client|openapi-document|services)\\.ts$';

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-cycles',
      severity: 'error',
      comment: 'An import circle means two modules are one module, or a type lives in the wrong room.',
      from: { path: '^src/' },
      to: { circular: true },
    },
    {
      name: 'leaves-import-no-layer',
      severity: 'error',
      comment: 'errors, config and readiness are the leaves everything may import: they import nothing of the service.',
      from: { path: '^src/(errors|config|readiness|logger)\\.ts$' },
      to: { path: '^src/', pathNot: '^src/(errors|config|readiness|logger)\\.ts$' },
    },
    {
      name: 'image-is-a-leaf-layer',
      severity: 'error',
      comment: 'src/image (sharp helpers) knows nothing of resources, engines, models or transports.',
      from: { path: '^src/image/' },
      to: { path: '^src/', pathNot: '^src/(image/|errors\\.ts$|config\\.ts$)' },
    },
    {
      name: 'models-below-engines-and-resources',
      severity: 'error',
      comment: 'src/models (manifest, verify, fetch, store) is used by engines and resources; it uses neither.',
      from: { path: '^src/models/' },
      to: { path: `^src/(engines|faces|resources)/|${TRANSPORTS}|${COMPOSITION}` },
    },
    {
      name: 'engines-below-resources',
      severity: 'error',
      comment: 'Engines run work in worker threads; the services over them (faces), what a request means (resources) and how it arrived (transports) are above them.',
      from: { path: '^src/engines/' },
      to: { path: `^src/(resources|faces|transport|fetch)/|${TRANSPORTS}|${COMPOSITION}` },
    },
    {
      name: 'engine-runtimes-independent',
      severity: 'error',
      comment: 'Each runtime (opencv, onnx, face) stands alone; only src/engines/engines.ts (the composition of what resources are given) sees them all.',
      from: { path: '^src/engines/(opencv|onnx|face)/' },
      to: { path: '^src/(engines/(opencv|onnx|face)/|faces/)', pathNot: '^src/engines/$1/' },
    },
    {
      name: 'faces-below-resources',
      severity: 'error',
      comment: 'The face gallery service is used by resources and transports; it does not know them.',
      from: { path: '^src/faces/' },
      to: { path: `^src/resources/|${TRANSPORTS}|${COMPOSITION}` },
    },
    {
      name: 'resources-know-no-transport',
      severity: 'error',
      comment: 'A resource and the pipeline never see HTTP, the DeepStack dialect or the CLI: transports translate to them.',
      from: { path: '^src/resources/' },
      to: { path: `^src/transport/|${TRANSPORTS}|${COMPOSITION}` },
    },
    {
      name: 'transports-side-by-side',
      severity: 'error',
      comment: 'Native HTTP, the DeepStack dialect and the CLI stand side by side over src/transport (the adapter): none imports another.',
      from: { path: '^src/http/' },
      to: { path: `^src/deepstack/|${COMPOSITION}` },
    },
    {
      name: 'dialect-beside-http',
      severity: 'error',
      comment: 'The DeepStack dialect uses the transport adapter (src/transport), never the native HTTP transport.',
      from: { path: '^src/deepstack/' },
      to: { path: `^src/http/|${COMPOSITION}` },
    },
    {
      name: 'cli-beside-http',
      severity: 'error',
      comment: 'The CLI is a transport too: it uses the adapter and the composition, never the HTTP or DeepStack transport.',
      from: { path: '^src/cli\\.ts$' },
      to: { path: '^src/(http|deepstack)/' },
    },
    {
      name: 'adapter-below-transports',
      severity: 'error',
      comment: 'src/transport (request deadline, body limits, key checks, error mapping, pipeline services) serves every transport and knows none of them.',
      from: { path: '^src/transport/' },
      to: { path: `${TRANSPORTS}|${COMPOSITION}` },
    },
    {
      name: 'fetch-is-a-source',
      severity: 'error',
      comment: 'src/fetch (outbound image fetching, the SSRF policy) knows only errors and config: the pipeline and the CLI are handed it.',
      from: { path: '^src/fetch/' },
      to: { path: '^src/', pathNot: '^src/(fetch/|errors\\.ts$|config\\.ts$)' },
    },
    {
      name: 'resources-do-not-fetch',
      severity: 'error',
      comment: 'A resource never downloads: a ?url= image reaches it through the pipeline, which is given a fetcher by the composition.',
      from: { path: '^src/resources/' },
      to: { path: '^src/fetch/' },
    },
    {
      name: 'web-runs-in-browsers',
      severity: 'error',
      comment: 'src/web is served to browsers: it may use only itself and the browser-safe client.',
      from: { path: '^src/web/' },
      to: { path: '^src/', pathNot: '^src/(web/|client\\.ts$)' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    includeOnly: '^src/',
  },
};
