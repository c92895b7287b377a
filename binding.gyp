{
  "targets": [
    {
      "target_name": "video_rnn",
      "sources": [
        "native/vgg16.cpp",
        "native/packing.cpp",
        "native/video_rnn.cpp",
        "native/embedding_cache.cpp",
        "native/engine.cpp",
        "native/distributed.cpp",
        "native/optimizer_state.cpp",
        "native/state.cpp",
        "native/tensor_file.cpp",
        "native/phase_times.cpp",
        "native/pooled_fc6.cpp",
        "native/prepacked_features.cpp",
        "native/winograd.cpp",
        "native/memory.cpp",
        "native/addon/module.cc",
        "native/addon/model_wrap.cc",
        "native/addon/workers.cc",
        "native/addon/convert.cc",
        "native/addon/optimizer_state_wrap.cc"
      ],
      "dependencies": ["<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except"],
      "include_dirs": ["native", "<!@(node scripts/torch-paths.js include)"],
      "libraries": ["<!@(node scripts/torch-paths.js libs)"],
      "defines": ["NAPI_VERSION=8", "<!@(node scripts/torch-paths.js defines)"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17"],
      "cflags_cc": ["<!@(node scripts/torch-paths.js cxxflags)", "-fexceptions", "-frtti", "-O2", "<!@(node scripts/openmp-flag.js)"],
      "ldflags": ["<!@(node scripts/openmp-flag.js)"]
    }
  ]
}
