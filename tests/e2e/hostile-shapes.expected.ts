/**
 * What each route answers for each hostile shape of tests/e2e/hostile-shapes.test.ts: every refusal,
 * by status and error code, per route; any shape not listed for a route is served (200). A shape is
 * "WxH" (a PNG), "format WxH", and " way" when not sent raw (multipart, json, url). The refusals
 * follow the routes' cost bounds (src/resources/*: cost()) and the limits of test config
 * (CVSERVE_MAX_PIXELS 40 M, CVSERVE_DECODE_MEMORY_BYTES 2 GiB: "rgba" and "ga16" rows of 40 M pixels
 * are estimated at 3.2 and 6.3 GiB): IMAGE_TOO_LARGE from the header, WORK_TOO_LARGE / OUTPUT_TOO_LARGE
 * from the work the route would do. A change here is a change of what clients get: say why.
 */
export const REFUSED: Record<string, Record<string, readonly string[]>> = {
  "/canny": {
    "413 OUTPUT_TOO_LARGE": ["1x65536", "65536x1", "1x131072", "131072x1", "1x262144", "262144x1", "1x524288", "524288x1", "1x1048576", "1048576x1", "1x2097152", "2097152x1", "1x4194304", "4194304x1", "1x8388608", "8388608x1", "1x16777216", "16777216x1", "1x33554432", "33554432x1", "1x40000000", "40000000x1", "6324x6324", "gif 1x65535", "gif 65535x1", "tiff 1x65536", "tiff 65536x1", "1x65536 multipart", "1x65536 json", "1x65536 url"],
    "413 IMAGE_TOO_LARGE": ["1x40000001", "40000001x1", "rgba 40000000x1", "ga16 40000000x1", "6325x6325", "6325x6325 multipart", "6325x6325 json", "6325x6325 url"],
  },
  "/detect": {
    "413 IMAGE_TOO_LARGE": ["1x40000001", "40000001x1", "rgba 40000000x1", "ga16 40000000x1", "6325x6325", "6325x6325 multipart", "6325x6325 json", "6325x6325 url"],
    "413 WORK_TOO_LARGE": ["6324x6324"],
  },
  "/catfacedetection": {
    "413 IMAGE_TOO_LARGE": ["1x40000001", "40000001x1", "rgba 40000000x1", "ga16 40000000x1", "6325x6325", "6325x6325 multipart", "6325x6325 json", "6325x6325 url"],
    "413 WORK_TOO_LARGE": ["6324x6324"],
  },
  "/predict": {
    "413 WORK_TOO_LARGE": ["1x1024", "1024x1", "1x2048", "2048x1", "1x4096", "4096x1", "1x8192", "8192x1", "1x16384", "16384x1", "1x32768", "32768x1", "1x65536", "65536x1", "1x131072", "131072x1", "1x262144", "262144x1", "1x524288", "524288x1", "1x1048576", "1048576x1", "1x2097152", "2097152x1", "1x4194304", "4194304x1", "1x8388608", "8388608x1", "1x16777216", "16777216x1", "1x33554432", "33554432x1", "1x40000000", "40000000x1", "jpeg 1x4096", "jpeg 4096x1", "jpeg 1x65500", "jpeg 65500x1", "webp 1x4096", "webp 4096x1", "webp 1x16383", "webp 16383x1", "gif 1x4096", "gif 4096x1", "gif 1x65535", "gif 65535x1", "tiff 1x4096", "tiff 4096x1", "tiff 1x65536", "tiff 65536x1", "avif 1x4096", "avif 4096x1", "avif 1x16384", "avif 16384x1", "1x65536 multipart", "1x65536 json", "1x65536 url"],
    "413 IMAGE_TOO_LARGE": ["1x40000001", "40000001x1", "rgba 40000000x1", "ga16 40000000x1", "6325x6325", "6325x6325 multipart", "6325x6325 json", "6325x6325 url"],
  },
  "/catdetection": {
    "413 IMAGE_TOO_LARGE": ["1x40000001", "40000001x1", "rgba 40000000x1", "ga16 40000000x1", "6325x6325", "6325x6325 multipart", "6325x6325 json", "6325x6325 url"],
  },
  "/upscale": {
    "413 WORK_TOO_LARGE": ["1x32768", "32768x1", "1x65536", "65536x1", "1x131072", "131072x1", "1x262144", "262144x1", "1x524288", "524288x1", "1x1048576", "1048576x1", "1x2097152", "2097152x1", "gif 1x65535", "gif 65535x1", "tiff 1x65536", "tiff 65536x1", "1x65536 multipart", "1x65536 json", "1x65536 url"],
    "413 OUTPUT_TOO_LARGE": ["1x4194304", "4194304x1", "1x8388608", "8388608x1", "1x16777216", "16777216x1", "1x33554432", "33554432x1", "1x40000000", "40000000x1", "6324x6324", "jpeg 1x65500", "jpeg 65500x1", "webp 1x16383", "webp 16383x1"],
    "413 IMAGE_TOO_LARGE": ["1x40000001", "40000001x1", "rgba 40000000x1", "ga16 40000000x1", "6325x6325", "6325x6325 multipart", "6325x6325 json", "6325x6325 url"],
  },
  "/facedetection": {
    "413 IMAGE_TOO_LARGE": ["1x40000001", "40000001x1", "rgba 40000000x1", "ga16 40000000x1", "6325x6325", "6325x6325 multipart", "6325x6325 json", "6325x6325 url"],
  },
  "/facerecognition": {
    "413 IMAGE_TOO_LARGE": ["1x40000001", "40000001x1", "rgba 40000000x1", "ga16 40000000x1", "6325x6325", "6325x6325 multipart", "6325x6325 json", "6325x6325 url"],
  },
  "/ocr": {
    "413 IMAGE_TOO_LARGE": ["1x40000001", "40000001x1", "rgba 40000000x1", "ga16 40000000x1", "6325x6325", "6325x6325 multipart", "6325x6325 json", "6325x6325 url"],
  },
  "/alpr": {
    "413 IMAGE_TOO_LARGE": ["1x40000001", "40000001x1", "rgba 40000000x1", "ga16 40000000x1", "6325x6325", "6325x6325 multipart", "6325x6325 json", "6325x6325 url"],
  },
};
