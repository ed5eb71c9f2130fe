# The OpenCV.js export whitelist for cvserve (read by OpenCV's platforms/js/build_js.py --config).
#
# Only what cvserve calls is exported. Mat, the vectors (RectVector, IntVector, ...), Size, Rect,
# the CV_* and COLOR_* constants and the file-system helpers come with every build (core bindings).
# tests/engines/opencv-builds.test.ts checks every cv.<name> the engine and its tests use against
# the built module, so a call added without adding it here fails in CI, not in production.

core = {'': []}

imgproc = {'': ['Canny', 'cvtColor']}

objdetect = {
    # groupRectangles: the scale-split tests compare src/engines/opencv/split.ts against it.
    '': ['groupRectangles'],
    'CascadeClassifier': ['CascadeClassifier', 'load', 'empty', 'detectMultiScale'],
}

white_list = makeWhiteList([core, imgproc, objdetect])
