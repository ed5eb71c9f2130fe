# syntax=docker/dockerfile:1
# cvserve production image.
#
#   docker build -t cvserve .                                  # models fetched and sha256-checked at build time
#   docker build -t cvserve --build-arg FETCH_MODELS=false .   # no models in the image: mount them at /models
#   docker run --rm -p 8080:8080 --read-only --tmpfs /tmp cvserve
#   docker run --rm -p 8080:8080 --read-only --tmpfs /tmp -v cvserve-faces:/data cvserve   # with face recognition
#
# Nothing is written outside /tmp at run time, except a run-time model fetch into CVSERVE_MODELS_DIR
# (/models), which then must be a writable volume (README "Docker"), and the face gallery
# (CVSERVE_DATA_DIR=/data/faces.sqlite, face descriptors: biometric data), created on the first face
# register or recognize: mount a volume at /data to keep it (README "Faces"), or set
# CVSERVE_DATABASE_URL for PostgreSQL instead. scripts/image-test.sh builds this file and checks
# the image from outside (CI); tests/deploy/dockerfile.test.ts checks it without building.

ARG NODE_IMAGE=node:20-bookworm-slim

# 0. toolchain: better-sqlite3 (the face gallery) builds its native addon with node-gyp when no
# prebuilt binary for the platform can be downloaded, and so does cvserve's JPEG decoder
# (native/jpeg, on libjpeg-turbo): python3, make, g++ and libjpeg's headers, installed only when the
# base image lacks them. Only the build stages use it; the runtime image has no compiler.
# node-gyp compiles against the headers the base image ships with its Node (/usr/local/include/node)
# instead of downloading them: behind a registry mirror neither that download nor better-sqlite3's
# prebuilt one (both outside the npm registry) is reachable.
FROM ${NODE_IMAGE} AS toolchain
RUN (command -v python3 && command -v make && command -v g++ && test -f /usr/include/jpeglib.h) >/dev/null \
 || (apt-get update -qq && apt-get install -y -qq --no-install-recommends python3 make g++ libjpeg62-turbo-dev)
ENV npm_config_nodedir=/usr/local

# 1. build: every dependency, then TypeScript → dist/
FROM toolchain AS build
# onnxruntime-node's install script would download CUDA files: package.json's allowScripts denies it (npm 11),
# this variable makes it skip (npm 10, as in this image).
ENV ONNXRUNTIME_NODE_INSTALL=skip
# Behind a TLS-intercepting proxy: the proxy's CA bundle, mounted at build time (buildah/podman
# build -v FILE:/run/build-ca.crt:ro --build-arg NODE_EXTRA_CA_CERTS=/run/build-ca.crt), named here for npm. A build argument of the build stages only:
# neither the bundle nor the setting reaches the runtime image.
ARG NODE_EXTRA_CA_CERTS
WORKDIR /app
COPY package.json package-lock.json ./
# npm ci's install step builds native/jpeg (scripts/build-native.mjs).
COPY scripts/build-native.mjs ./scripts/
COPY native ./native
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# 2. deps: the build stage's node_modules without the development dependencies (no second install
# and no second compile of better-sqlite3: under emulation, as for linux/arm64, each costs many
# minutes), and without what this platform never loads: onnxruntime-node's binaries for other
# systems and CPUs (about 245 MB), better-sqlite3's sources and compiler output but its addon
# (about 25 MB), source maps (about 210 MB, mostly TensorFlow.js's browser bundles'). The JPEG
# decoder keeps its addon, with the build stage's libjpeg copied beside it: the runtime image has
# no libjpeg of its own (sharp brings its own, linked in).
FROM build AS deps
RUN npm prune --omit=dev --no-audit --no-fund \
 && arch="$(node -p process.arch)" \
 && for dir in node_modules/onnxruntime-node/bin/napi-v*/*/*; do \
      case "$dir" in */linux/"$arch") ;; *) rm -rf "$dir" ;; esac; \
    done \
 && sqlite=node_modules/better-sqlite3 \
 && mv "$sqlite/build/Release/better_sqlite3.node" "$sqlite/" \
 && rm -rf "$sqlite/build" "$sqlite/deps" "$sqlite/src" \
 && mkdir -p "$sqlite/build/Release" && mv "$sqlite/better_sqlite3.node" "$sqlite/build/Release/" \
 && find node_modules -name '*.map' -type f -delete \
 && jpeg=native/jpeg/build/Release \
 && cp -L "$(ldd "$jpeg/cvserve_jpeg.node" | awk '/libjpeg\.so/ { print $3 }')" "$jpeg/" \
 && rm -rf "$jpeg/obj.target" "$jpeg/.deps"

# 3. runtime: production dependencies, compiled code, the model manifest; non-root
FROM ${NODE_IMAGE} AS runtime
# MALLOC_ARENA_MAX=2: glibc's per-thread malloc arenas fragment under sharp/libvips and onnxruntime
# and keep memory; two arenas keep the resident size flat (numbers: README "Scaling guide").
ENV NODE_ENV=production \
    ONNXRUNTIME_NODE_INSTALL=skip \
    MALLOC_ARENA_MAX=2 \
    PORT=8080 \
    CVSERVE_MODELS_DIR=/models \
    CVSERVE_DATA_DIR=/data
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
# The JPEG decoder and the libjpeg-turbo it was linked with (found beside it: RUNPATH $ORIGIN).
COPY --from=deps /app/native/jpeg/build/Release ./native/jpeg/build/Release
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY models ./models
# The playground's sample photos (data/ has nothing else in the build context: no face gallery).
COPY data ./data
# cvserve's WebAssembly-SIMD OpenCV.js (CVSERVE_OPENCV_BUILD=simd, the default), with its licences.
COPY vendor/opencv ./vendor/opencv

# Models: fetched now by the project's own command (each file's sha256 checked against
# models/models.json), or left out (FETCH_MODELS=false) for a volume at /models. The directory
# belongs to the run-time user so a run-time fetch can fill it; fetched files stay root's, read-only.
# CVSERVE_MODELS_BASE_URL (optional): fetch from a mirror instead of each file's public URL.
ARG FETCH_MODELS=true
ARG CVSERVE_MODELS_BASE_URL=
RUN mkdir -p "$CVSERVE_MODELS_DIR" \
 && if [ "$FETCH_MODELS" = "true" ]; then node dist/src/cli.js models; fi \
 && chown 1000:1000 "$CVSERVE_MODELS_DIR"

# The face gallery's directory, the run-time user's: a volume mounted here keeps the gallery.
RUN mkdir -p "$CVSERVE_DATA_DIR" && chown 1000:1000 "$CVSERVE_DATA_DIR" && chmod 700 "$CVSERVE_DATA_DIR"

# The base image's "node" user, by number so Kubernetes can check runAsNonRoot.
USER 1000:1000
EXPOSE 8080
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||8080)+'/healthz',{signal:AbortSignal.timeout(2500)}).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# node itself, no npm or shell in between, so SIGTERM reaches the server and starts the drain.
CMD ["node", "dist/src/server.js"]
