{
  "targets": [
    {
      "target_name": "cvserve_jpeg",
      "sources": ["decode.c", "enlarge.c"],
      "cflags": ["-O3", "-Wall", "-Wextra"],
      "defines": ["NAPI_VERSION=8"],
      "libraries": ["-ljpeg"],
      "ldflags": ["-Wl,-rpath,'$$ORIGIN'"]
    }
  ]
}
