{
  "targets": [
    {
      "target_name": "cvserve_jpeg",
      "sources": ["canny.c", "decode.c", "enlarge.c", "pack.c", "reduce.c"],
      "cflags": ["-O3", "-ffp-contract=off", "-Wall", "-Wextra"],
      "defines": ["NAPI_VERSION=8"],
      "libraries": ["-ljpeg"],
      "ldflags": ["-Wl,-rpath,'$$ORIGIN'"]
    }
  ]
}
