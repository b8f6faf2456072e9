# libFuzzer target for the ONNX importer (SWINRT_FUZZ=ON, clang only):
#   CC=clang CXX=clang++ cmake -S . -B build/fuzz -G Ninja -DSWINRT_FUZZ=ON -DSWINRT_TESTS=OFF
#   cmake --build build/fuzz --target onnx_fuzz
# scripts/fuzz-onnx.sh does this and runs it for a fixed time. Included from
# the top-level CMakeLists.txt (the protoc output must be in the same scope).
if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
  message(FATAL_ERROR "SWINRT_FUZZ needs clang with libFuzzer: configure with CC=clang CXX=clang++")
endif()
if(NOT SWINRT_ONNX_ENABLED)
  message(FATAL_ERROR "SWINRT_FUZZ needs the ONNX importer (protobuf and protoc)")
endif()
# The parser and what it calls, instrumented; protobuf's runtime is not.
add_executable(onnx_fuzz tests/fuzz/onnx_fuzz.cpp src/model/onnx.cpp src/model/onnx_graph.cpp
               ${SWINRT_PROTO_DIR}/onnx.pb.cc src/model/config.cpp src/model/weights.cpp
               src/model/safetensors.cpp src/model/plan.cpp src/model/error.cpp)
target_include_directories(onnx_fuzz PRIVATE include src)
target_include_directories(onnx_fuzz SYSTEM PRIVATE ${SWINRT_PROTO_DIR})
target_link_libraries(onnx_fuzz PRIVATE fmt::fmt nlohmann_json::nlohmann_json protobuf::libprotobuf)
set(SWINRT_FUZZ_FLAGS -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -g -O1)
target_compile_options(onnx_fuzz PRIVATE ${SWINRT_FUZZ_FLAGS})
target_link_options(onnx_fuzz PRIVATE ${SWINRT_FUZZ_FLAGS})
