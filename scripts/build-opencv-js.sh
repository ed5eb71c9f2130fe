#!/usr/bin/env bash
# Builds cvserve's own OpenCV.js (WebAssembly SIMD, only the functions cvserve calls) into
# vendor/opencv/, from Debian's sources with Debian's toolchain, and records every input.
#
#   bash scripts/build-opencv-js.sh           # build, then replace vendor/opencv/opencv-simd.*
#   bash scripts/build-opencv-js.sh --check   # build again, compare with the committed files, change nothing
#
# Needs (Debian bookworm, root for the package install):
#   apt-get install emscripten=3.1.6~dfsg-5 cmake make python3 curl xz-utils
#   deb-src lines for a suite that carries OpenCV 4.10 and zlib 1.3.1 (trixie or sid), e.g. in
#   /etc/apt/sources.list.d/debian-src.sources: "Types: deb-src", the same URIs as the Debian
#   entry, "Suites: trixie sid", then apt-get update.
# Sources are fetched through apt's configured mirror (apt-get source --print-uris) and checked
# against the sha256 pinned below; a tarball already in $WORKDIR/downloads is reused after the check.
# Takes about 6 minutes on 2 cores. Node (the project's) compresses the wasm and checks the exports.
set -euo pipefail

# ---- pinned inputs ---------------------------------------------------------------------------
# OpenCV 4.10.0 is the newest in Debian (trixie 4.10.0+dfsg-5, sid 4.10.0+dfsg-9, same tarball);
# 4.12 (the npm build's version) is not packaged. Debian's tarball has 3rdparty/ removed.
OPENCV_ORIG=opencv_4.10.0+dfsg.orig.tar.xz
OPENCV_SHA256=4ca619efbad524c550771ab110332fc81293fb720bd03980fe58bc15f9ca3be8
OPENCV_DIR=opencv-4.10.0
# zlib (OpenCV core needs it; OpenCV's bundled copy is one of the removed 3rdparty parts).
ZLIB_ORIG=zlib_1.3.dfsg+really1.3.1.orig.tar.gz
ZLIB_SHA256=60dd315c07f616887caa029408308a018ace66e3d142726a97db164b3b8f69fb
ZLIB_DIR=zlib-1.3.1
# Debian bookworm's emscripten (clang 14, binaryen 108).
EMSCRIPTEN_DEB=3.1.6~dfsg-5
EMSCRIPTEN_ROOT=/usr/share/emscripten
# OpenCV's build information (cv.getBuildInformation(), a string inside the wasm) names the build
# host's kernel ("Host: Linux <uname -r> x86_64"); its length shifts every later data address, so
# each machine built a different wasm. The line is pinned to the one the committed files carry.
BUILD_HOST_LINE="Linux 6.18.44-fc-v857 x86_64"

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
WORKDIR="${OPENCV_JS_WORKDIR:-/tmp/cvserve-opencv-js}"
OUT="$ROOT/vendor/opencv"
CONFIG="$ROOT/scripts/opencv-js/opencv_js.config.py"
JOBS="${JOBS:-$(nproc)}"
MODE=write
[[ "${1:-}" == "--check" ]] && MODE=check

log() { printf '\n== %s\n' "$*" >&2; }
die() { printf 'build-opencv-js: %s\n' "$*" >&2; exit 1; }

# ---- toolchain ---------------------------------------------------------------------------------
pkgver() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || echo missing; }
[[ "$(pkgver emscripten)" == "$EMSCRIPTEN_DEB" ]] || die "emscripten $EMSCRIPTEN_DEB is needed (found: $(pkgver emscripten)): apt-get install emscripten=$EMSCRIPTEN_DEB"
for tool in cmake make python3 curl xz node sha256sum; do command -v "$tool" >/dev/null || die "$tool is needed"; done
# emcc's JS optimizer needs acorn, which Debian installs under /usr/share/nodejs.
export NODE_PATH=/usr/share/nodejs${NODE_PATH:+:$NODE_PATH}
# Debian's python3 for build_js.py and for emcc (its wrapper runs "python3" from PATH).
export PATH="/usr/bin:/bin:$PATH" EMSDK_PYTHON=/usr/bin/python3
export EMSCRIPTEN="$EMSCRIPTEN_ROOT" PYTHONHASHSEED=0 SOURCE_DATE_EPOCH=0 LC_ALL=C TZ=UTC

# ---- sources -----------------------------------------------------------------------------------
mkdir -p "$WORKDIR/downloads"

# The URI apt's configured mirror gives for a source package's file (any listed version that has it).
apt_uri() {
  local pkg=$1 file=$2 version uri
  for version in $(apt-cache showsrc "$pkg" 2>/dev/null | awk '/^Version:/ {print $2}'); do
    uri=$(apt-get source -qq --print-uris "$pkg=$version" 2>/dev/null | awk -v f="$file" '$2 == f {gsub("\047", "", $1); print $1; exit}')
    [[ -n "$uri" ]] && { echo "$uri"; return 0; }
  done
  return 1
}

fetch_source() {
  local pkg=$1 file=$2 sha=$3 dest="$WORKDIR/downloads/$2" uri
  if [[ -f "$dest" ]] && echo "$sha  $dest" | sha256sum -c --status; then return 0; fi
  uri=$(apt_uri "$pkg" "$file") || die "apt knows no source package $pkg with $file: add deb-src lines for trixie or sid (see the top of this script), apt-get update"
  log "download $file"
  curl -fsSL -o "$dest.part" "$uri"
  echo "$sha  $dest.part" | sha256sum -c --status || die "$file: sha256 differs from the pinned $sha"
  mv "$dest.part" "$dest"
}

fetch_source opencv "$OPENCV_ORIG" "$OPENCV_SHA256"
fetch_source zlib "$ZLIB_ORIG" "$ZLIB_SHA256"

# Fresh trees every run, at fixed paths (paths can end up in the output).
SRC="$WORKDIR/src"
BUILD="$WORKDIR/build"
rm -rf "$SRC" "$BUILD"
mkdir -p "$SRC" "$BUILD/zlib"
log "extract"
tar -C "$SRC" -xf "$WORKDIR/downloads/$OPENCV_ORIG"
tar -C "$SRC" -xf "$WORKDIR/downloads/$ZLIB_ORIG"

START=$(date +%s)

# ---- zlib: the library sources, compiled with emcc into a static archive -----------------------
log "zlib"
ZLIB_SOURCES=(adler32 compress crc32 deflate gzclose gzlib gzread gzwrite infback inffast inflate inftrees trees uncompr zutil)
for name in "${ZLIB_SOURCES[@]}"; do
  emcc -O2 -DZ_HAVE_UNISTD_H -I"$SRC/$ZLIB_DIR" -c "$SRC/$ZLIB_DIR/$name.c" -o "$BUILD/zlib/$name.o"
done
(cd "$BUILD/zlib" && emar rcsD libz.a "${ZLIB_SOURCES[@]/%/.o}")

# ---- OpenCV.js -----------------------------------------------------------------------------------
log "OpenCV.js (SIMD)"
# build_js.py's own flags, then ours: zlib from above; only core/imgproc/objdetect and what objdetect
# needs (calib3d, features2d, flann) are built; no tests, examples, dnn, or image codecs.
# NODEJS_CATCH_*=0: the module must not install process-wide handlers in the service's workers.
(cd "$BUILD" && /usr/bin/python3 "$SRC/$OPENCV_DIR/platforms/js/build_js.py" "$BUILD/opencv" \
  --build_wasm --simd --disable_single_file \
  --emscripten_dir "$EMSCRIPTEN_ROOT" \
  --config "$CONFIG" \
  --build_flags "-s NODEJS_CATCH_EXIT=0 -s NODEJS_CATCH_REJECTION=0 " \
  --cmake_option=-DBUILD_ZLIB=OFF \
  --cmake_option=-DZLIB_LIBRARY="$BUILD/zlib/libz.a" \
  --cmake_option=-DZLIB_INCLUDE_DIR="$SRC/$ZLIB_DIR" \
  --cmake_option=-DBUILD_opencv_dnn=OFF \
  --cmake_option=-DBUILD_opencv_photo=OFF \
  --cmake_option=-DBUILD_opencv_video=OFF \
  --cmake_option=-DBUILD_opencv_ml=OFF \
  --cmake_option=-DBUILD_TESTS=OFF \
  --cmake_option=-DBUILD_PERF_TESTS=OFF \
  --cmake_option=-DBUILD_EXAMPLES=OFF \
  --cmake_option=-DWITH_OPENJPEG=OFF \
  --cmake_option=-DWITH_PROTOBUF=OFF \
  --cmake_option=-DWITH_FLATBUFFERS=OFF \
  --cmake_option=-DWITH_AVIF=OFF \
  --cmake_option=-DOPENCV_GENERATE_SETUPVARS=OFF \
  --config_only > "$BUILD/cmake.log" 2>&1) || { tail -40 "$BUILD/cmake.log"; die "cmake failed (log: $BUILD/cmake.log)"; }
# Pin the host line of the generated build information (see BUILD_HOST_LINE) before compiling.
VERSION_INC="$BUILD/opencv/modules/core/version_string.inc"
grep -q '^"    Host:  ' "$VERSION_INC" || die "no Host: line in $VERSION_INC"
sed -i -E 's|^("    Host: +).*(\\n")$|\1'"$BUILD_HOST_LINE"'\2|' "$VERSION_INC"
[[ "$(grep -c "Host: *$BUILD_HOST_LINE\\\\n" "$VERSION_INC")" == 1 ]] || die "could not pin the Host: line in $VERSION_INC"
grep -q "$(uname -r)" "$VERSION_INC" && [[ "$BUILD_HOST_LINE" != *"$(uname -r)"* ]] && die "the kernel version $(uname -r) is still in $VERSION_INC"
(cd "$BUILD/opencv" && make -j"$JOBS" opencv.js > "$BUILD/make.log" 2>&1) || { tail -40 "$BUILD/make.log"; die "make failed (log: $BUILD/make.log)"; }

BUILD_SECONDS=$(( $(date +%s) - START ))
GLUE="$BUILD/opencv/bin/opencv_js.js"
WASM="$BUILD/opencv/bin/opencv_js.wasm"
[[ -f "$GLUE" && -f "$WASM" ]] || die "no output in $BUILD/opencv/bin"
# Instructions on 128-bit vectors (v128.*, i8x16.*, ..., f64x2.*) in the disassembly.
SIMD_LINES=$(wasm-dis "$WASM" | grep -cE '\((v128|[if](8x16|16x8|32x4|64x2))\.' || true)
(( SIMD_LINES > 0 )) || die "no SIMD instruction in the wasm"

# ---- package: glue as is (CommonJS), wasm brotli-compressed (decompressed at load) ----------------
STAGE="$WORKDIR/stage"
rm -rf "$STAGE" && mkdir -p "$STAGE"
cp "$GLUE" "$STAGE/opencv-simd.cjs"
node -e '
  const fs = require("node:fs"), zlib = require("node:zlib");
  const [src, dst] = process.argv.slice(1);
  const raw = fs.readFileSync(src);
  const C = zlib.constants;
  fs.writeFileSync(dst, zlib.brotliCompressSync(raw, { params: { [C.BROTLI_PARAM_QUALITY]: 11, [C.BROTLI_PARAM_LGWIN]: 24, [C.BROTLI_PARAM_SIZE_HINT]: raw.length } }));
' "$WASM" "$STAGE/opencv-simd.wasm.br"
cp "$SRC/$OPENCV_DIR/LICENSE" "$STAGE/LICENSE.opencv"
cp "$SRC/$OPENCV_DIR/COPYRIGHT" "$STAGE/COPYRIGHT.opencv"
cp "$SRC/$ZLIB_DIR/LICENSE" "$STAGE/LICENSE.zlib"
cp /usr/share/doc/emscripten/copyright "$STAGE/COPYRIGHT.emscripten-debian"

# The exported names (from the generated bindings, checked on the built module), and a check that
# every cv.<name> the engine, its tests and the kernel benchmarks use is there.
BINDINGS="$BUILD/opencv/modules/js_bindings_generator/gen/bindings.cpp"
(cd "$ROOT" && node --import tsx scripts/opencv-js/exports.ts "$STAGE" "$BINDINGS") > "$BUILD/exports.json" || die "the build lacks names cvserve uses: $(cat "$BUILD/exports.json")"
jsonlist() { node -p "JSON.parse(require('fs').readFileSync('$BUILD/exports.json', 'utf8')).$1.map((n) => JSON.stringify(n)).join(', ')"; }

sha() { sha256sum "$1" | cut -d' ' -f1; }
bytes() { stat -c %s "$1"; }
cat > "$STAGE/build-info.json" <<JSON
{
  "opencv": { "source": "Debian source package opencv 4.10.0+dfsg (trixie 4.10.0+dfsg-5, sid 4.10.0+dfsg-9)", "file": "$OPENCV_ORIG", "sha256": "$OPENCV_SHA256" },
  "zlib": { "source": "Debian source package zlib 1:1.3.dfsg+really1.3.1", "file": "$ZLIB_ORIG", "sha256": "$ZLIB_SHA256" },
  "toolchain": {
    "emscripten": "$(pkgver emscripten) (Debian bookworm)",
    "clang": "$(pkgver clang-14)",
    "lld": "$(pkgver lld-14)",
    "binaryen": "$(pkgver binaryen)",
    "cmake": "$(pkgver cmake)",
    "python3": "$(pkgver python3)",
    "node (brotli)": "$(node -p 'process.version + " brotli " + process.versions.brotli')"
  },
  "build": "platforms/js/build_js.py --build_wasm --simd --disable_single_file, whitelist scripts/opencv-js/opencv_js.config.py, see scripts/build-opencv-js.sh",
  "whitelistSha256": "$(sha "$CONFIG")",
  "exports": [$(jsonlist exports)],
  "coreBindings": [$(jsonlist core)],
  "simdInstructionLines": $SIMD_LINES,
  "files": {
    "opencv-simd.cjs": { "bytes": $(bytes "$STAGE/opencv-simd.cjs"), "sha256": "$(sha "$STAGE/opencv-simd.cjs")" },
    "opencv-simd.wasm": { "bytes": $(bytes "$WASM"), "sha256": "$(sha "$WASM")", "stored": "opencv-simd.wasm.br" },
    "opencv-simd.wasm.br": { "bytes": $(bytes "$STAGE/opencv-simd.wasm.br"), "sha256": "$(sha "$STAGE/opencv-simd.wasm.br")" }
  }
}
JSON

log "built in ${BUILD_SECONDS}s: wasm $(bytes "$WASM") bytes ($(bytes "$STAGE/opencv-simd.wasm.br") brotli), glue $(bytes "$STAGE/opencv-simd.cjs") bytes"
echo "BUILD_SECONDS=$BUILD_SECONDS" > "$WORKDIR/last-build.env"

if [[ "$MODE" == check ]]; then
  status=0
  for f in opencv-simd.cjs opencv-simd.wasm.br; do
    if cmp -s "$STAGE/$f" "$OUT/$f"; then echo "same: $f $(sha "$STAGE/$f")"; else echo "DIFFERENT: $f (built $(sha "$STAGE/$f"), committed $(sha "$OUT/$f" 2>/dev/null || echo none))"; status=1; fi
  done
  exit $status
fi

mkdir -p "$OUT"
cp "$STAGE"/* "$OUT/"
log "wrote $OUT"
