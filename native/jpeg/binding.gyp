{
  "targets": [
    {
      "target_name": "cvserve_jpeg",
      "sources": ["decode.c"],
      "cflags": ["-O2", "-Wall", "-Wextra"],
      "defines": ["NAPI_VERSION=8"],
      "libraries": ["-ljpeg"],
      "ldflags": ["-Wl,-rpath,'$$ORIGIN'"]
    }
  ]
}
