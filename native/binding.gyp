{
  "targets": [
    {
      "target_name": "periscope_native",
      "sources": [
        "src/addon.cc",
        "src/remote_memory.cc",
        "src/proc_mem.cc",
        "src/proc.cc",
        "src/elf.cc",
        "src/interpreter.cc",
        "src/debug_offsets.cc",
        "src/layout.cc",
        "src/arch_offsets.cc",
        "src/line_table.cc",
        "src/python_strings.cc",
        "src/code_cache.cc",
        "src/stack_walker.cc",
        "src/asyncio_tasks.cc",
        "src/thread_names.cc",
        "src/ptrace_pause.cc",
        "src/sampler.cc",
        "src/generated/offsets_table.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=9", "NODE_ADDON_API_DISABLE_DEPRECATED", "NAPI_CPP_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti"],
      "cflags_cc": ["-std=c++17", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "-fexceptions"]
    }
  ]
}
