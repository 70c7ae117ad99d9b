{
  "variables": {
    "with_uring%": "<!(sh native/tools/probe.sh liburing)",
    "with_xdp%": "<!(sh native/tools/probe.sh libxdp)",
    "sanitize%": "<!(echo ${RTPHUB_SANITIZE:-0})"
  },
  "targets": [
    {
      "target_name": "rtphub",
      "sources": [
        "native/addon/module.cc",
        "native/addon/engine_wrap.cc",
        "native/channel/command.cc",
        "native/dataplane/announce.cc",
        "native/dataplane/engine.cc",
        "native/dataplane/epoll_backend.cc",
        "native/dataplane/port_pool.cc",
        "native/dataplane/worker.cc",
        "native/sessions/counters.cc",
        "native/sessions/endpoint.cc",
        "native/sessions/stream_table.cc",
        "native/snapshot/record.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED", "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17", "-std=gnu++20"],
      "cflags_cc": ["-std=c++17", "-O2", "-Wall", "-Wextra", "-fvisibility=hidden", "-fexceptions"],
      "conditions": [
        ["with_uring==1", {
          "sources": ["native/dataplane/uring_backend.cc"],
          "libraries": ["-luring"]
        }, {
          "sources": ["native/dataplane/uring_absent.cc"]
        }],
        ["with_xdp==1", {
          "sources": [
            "native/dataplane/xdp_backend.cc",
            "native/dataplane/xdp_neighbours.cc",
            "native/dataplane/xdp_program.cc"
          ],
          "libraries": ["-lxdp", "-lbpf"],
          "actions": [{
            "action_name": "xdp_relay_object",
            "inputs": ["native/bpf/xdp_relay.bpf.c", "native/tools/embed-bpf.sh"],
            "outputs": ["<(INTERMEDIATE_DIR)/xdp_relay_object.cc"],
            "action": ["sh", "native/tools/embed-bpf.sh", "native/bpf/xdp_relay.bpf.c", "<@(_outputs)"],
            "process_outputs_as_sources": 1
          }]
        }, {
          "sources": ["native/dataplane/xdp_absent.cc"]
        }],
        ["sanitize==1", {
          "cflags_cc": ["-fsanitize=address,undefined", "-fno-omit-frame-pointer", "-O1", "-g"],
          "ldflags": ["-fsanitize=address,undefined"]
        }]
      ]
    }
  ]
}
