// A CUDA training-like job fed by a sluice pipeline: each batch goes to the GPU through a pinned
// staging buffer, is mixed into a matrix, and a chain of tiled matrix products follows, so the
// input pipeline races real GPU work. It times its own kernels with CUDA events, and prints the
// figures a trace's GPU section must agree with.
//
//   gpu_train --pipeline examples/gpu_pipeline.json [--steps N] [--matrix 2048] [--matmuls 4]
//             [--epochs N]
//
// At exit (end of data, --steps, or SIGINT/SIGTERM), one machine-readable line on stdout:
//   gpu_train: steps=N seconds=S gpu_kernel_seconds=K gpu_busy_fraction=F h2d_bytes=B device="NAME"
// seconds is the training loop's wall time; gpu_kernel_seconds sums, per step, the CUDA-event
// time from the first kernel's start to the last one's end (the kernels of a step run back to
// back on one stream, so this is their busy time); gpu_busy_fraction is their ratio; h2d_bytes
// counts every host-to-device copy, the initial upload of the two matrices (2 * N * N * 4
// bytes) included, so it matches what a trace records over the whole run.
//
// Written without fmt: fmt 9's compile-time format strings do not build under nvcc in C++20.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>

#include "sluice/common/clock.h"
#include "sluice/config/document.h"
#include "sluice/pipeline/element.h"
#include "sluice/pipeline/pipeline.h"

namespace {

// Exits with "gpu_train: file:line: call: CUDA's message" when a CUDA call fails.
void CheckCuda(cudaError_t result, const char* call, const char* file, int line) {
  if (result == cudaSuccess) return;
  std::fprintf(stderr, "gpu_train: %s:%d: %s: %s\n", file, line, call, cudaGetErrorString(result));
  std::exit(1);
}
#define CUDA_CHECK(call) CheckCuda((call), #call, __FILE__, __LINE__)

constexpr int kTile = 32;  // a kTile x kTile thread block computes a kTile x kTile output tile

// c = a * b for n x n row-major matrices: each block stages one tile of a and one of b in
// shared memory per step along k, and each thread accumulates one output element.
__global__ void TiledMatMul(const float* a, const float* b, float* c, int n) {
  __shared__ float a_tile[kTile][kTile];
  __shared__ float b_tile[kTile][kTile];
  const int row = blockIdx.y * kTile + threadIdx.y;
  const int col = blockIdx.x * kTile + threadIdx.x;
  float sum = 0;
  for (int k0 = 0; k0 < n; k0 += kTile) {
    const int a_col = k0 + threadIdx.x;
    const int b_row = k0 + threadIdx.y;
    a_tile[threadIdx.y][threadIdx.x] =
        row < n && a_col < n ? a[static_cast<size_t>(row) * n + a_col] : 0.0f;
    b_tile[threadIdx.y][threadIdx.x] =
        b_row < n && col < n ? b[static_cast<size_t>(b_row) * n + col] : 0.0f;
    __syncthreads();
#pragma unroll
    for (int k = 0; k < kTile; ++k) sum += a_tile[threadIdx.y][k] * b_tile[k][threadIdx.x];
    __syncthreads();
  }
  if (row < n && col < n) c[static_cast<size_t>(row) * n + col] = sum;
}

// x = (x + batch) / 2, the batch repeated over x: makes every step's product depend on the
// batch just copied in.
__global__ void MixBatch(float* x, size_t x_size, const float* batch, size_t batch_size) {
  const size_t stride = static_cast<size_t>(gridDim.x) * blockDim.x;
  for (size_t i = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < x_size;
       i += stride) {
    x[i] = 0.5f * (x[i] + batch[i % batch_size]);
  }
}

volatile std::sig_atomic_t g_stop = 0;
extern "C" void OnSignal(int) { g_stop = 1; }

// An n x n matrix of random floats of variance 1/n, so that products keep magnitudes near 1.
std::vector<float> RandomMatrix(int n, uint32_t seed) {
  std::mt19937 rng(seed);
  const float bound = std::sqrt(3.0f / static_cast<float>(n));
  std::uniform_real_distribution<float> uniform(-bound, bound);
  std::vector<float> values(static_cast<size_t>(n) * n);
  for (float& v : values) v = uniform(rng);
  return values;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"CUDA training-like job fed by a sluice pipeline", "gpu_train"};
  std::string pipeline_path;
  int64_t steps = 0;
  int matrix = 2048;
  int matmuls = 4;
  int64_t epochs = 0;
  app.add_option("--pipeline", pipeline_path, "Pipeline config (JSON) whose batches are float32")
      ->required();
  app.add_option("--steps", steps, "Stop after this many steps (default: end of data)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--matrix", matrix, "Side of the square matrices multiplied each step")
      ->check(CLI::Range(32, 16384));
  app.add_option("--matmuls", matmuls, "Matrix products per step")->check(CLI::Range(0, 1000));
  app.add_option("--epochs", epochs, "Override the config's epochs (-1: forever)");
  CLI11_PARSE(app, argc, argv);

  int devices = 0;
  const cudaError_t found = cudaGetDeviceCount(&devices);
  if (found != cudaSuccess || devices == 0) {
    // Versions, to tell a missing driver from one older than this runtime; not checked, as
    // they only describe the failure (the driver's is 0 when there is none).
    int driver = 0;
    int runtime = 0;
    cudaDriverGetVersion(&driver);
    cudaRuntimeGetVersion(&runtime);
    std::string versions = "no NVIDIA driver found";
    if (driver > 0) {
      versions = "driver supports CUDA " + std::to_string(driver / 1000) + "." +
                 std::to_string(driver % 1000 / 10) + ", gpu_train was built for CUDA " +
                 std::to_string(runtime / 1000) + "." + std::to_string(runtime % 1000 / 10);
    }
    std::fprintf(stderr, "gpu_train: no CUDA device: %s (%s)\n",
                 found != cudaSuccess ? cudaGetErrorString(found) : "the driver reports none",
                 versions.c_str());
    return 1;
  }
  cudaDeviceProp properties{};
  CUDA_CHECK(cudaGetDeviceProperties(&properties, 0));
  CUDA_CHECK(cudaSetDevice(0));

  std::unique_ptr<sluice::pipeline::Pipeline> pipeline;
  try {
    auto config = sluice::config::Document::Load(pipeline_path);
    sluice::pipeline::PipelineOptions options;
    if (epochs != 0) options.epochs = epochs;
    pipeline = sluice::pipeline::Pipeline::Create(config, options);
  } catch (const std::exception& e) {  // sluice::Error, naming the file, stage and key
    std::fprintf(stderr, "gpu_train: %s\n", e.what());
    return 1;
  }

  const int n = matrix;
  const size_t matrix_bytes = static_cast<size_t>(n) * n * sizeof(float);
  float* x = nullptr;  // the activations: mixed with each batch, then multiplied
  float* y = nullptr;  // the other side of each product
  float* w = nullptr;  // the weights
  CUDA_CHECK(cudaMalloc(&x, matrix_bytes));
  CUDA_CHECK(cudaMalloc(&y, matrix_bytes));
  CUDA_CHECK(cudaMalloc(&w, matrix_bytes));
  {
    const std::vector<float> x_init = RandomMatrix(n, 1);
    const std::vector<float> w_init = RandomMatrix(n, 2);
    CUDA_CHECK(cudaMemcpy(x, x_init.data(), matrix_bytes, cudaMemcpyHostToDevice));
    CUDA_CHECK(cudaMemcpy(w, w_init.data(), matrix_bytes, cudaMemcpyHostToDevice));
  }
  cudaStream_t stream = nullptr;
  cudaEvent_t kernels_begin = nullptr;
  cudaEvent_t kernels_end = nullptr;
  CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  CUDA_CHECK(cudaEventCreate(&kernels_begin));
  CUDA_CHECK(cudaEventCreate(&kernels_end));

  // The batch's path: pipeline tensor -> pinned staging buffer -> device buffer. Both grow to
  // the largest batch seen.
  float* staging = nullptr;
  float* device_batch = nullptr;
  size_t capacity = 0;

  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);
  const dim3 block(kTile, kTile);
  const dim3 grid((n + kTile - 1) / kTile, (n + kTile - 1) / kTile);
  const int mix_blocks = std::min(8 * properties.multiProcessorCount, 65535);
  int64_t done = 0;
  int64_t h2d_bytes = 2 * static_cast<int64_t>(matrix_bytes);  // x and w, uploaded above
  double kernel_seconds = 0;
  const int64_t start = sluice::MonotonicNanos();
  try {
    sluice::pipeline::Element batch;
    while ((steps == 0 || done < steps) && !g_stop && pipeline->Next(&batch)) {
      if (batch.tensors.empty() || batch.tensors[0].dtype() != sluice::pipeline::DType::kFloat32 ||
          batch.tensors[0].num_values() == 0) {
        std::fprintf(stderr,
                     "gpu_train: expected a non-empty float32 tensor from the pipeline, got %s "
                     "(end the pipeline with normalize and batch)\n",
                     batch.tensors.empty() ? "no tensor" : batch.tensors[0].Describe().c_str());
        return 1;
      }
      const sluice::pipeline::Tensor& tensor = batch.tensors[0];
      const size_t bytes = tensor.byte_size();
      if (bytes > capacity) {
        CUDA_CHECK(cudaFreeHost(staging));
        CUDA_CHECK(cudaFree(device_batch));
        CUDA_CHECK(cudaMallocHost(&staging, bytes));
        CUDA_CHECK(cudaMalloc(&device_batch, bytes));
        capacity = bytes;
      }
      // The previous step synchronized, so the staging buffer is free to overwrite.
      std::memcpy(staging, tensor.data<float>(), bytes);
      CUDA_CHECK(cudaMemcpyAsync(device_batch, staging, bytes, cudaMemcpyHostToDevice, stream));
      CUDA_CHECK(cudaEventRecord(kernels_begin, stream));
      MixBatch<<<mix_blocks, 256, 0, stream>>>(x, static_cast<size_t>(n) * n, device_batch,
                                               static_cast<size_t>(tensor.num_values()));
      CUDA_CHECK(cudaGetLastError());
      for (int m = 0; m < matmuls; ++m) {
        TiledMatMul<<<grid, block, 0, stream>>>(x, w, y, n);
        CUDA_CHECK(cudaGetLastError());
        std::swap(x, y);
      }
      CUDA_CHECK(cudaEventRecord(kernels_end, stream));
      CUDA_CHECK(cudaStreamSynchronize(stream));
      float ms = 0;
      CUDA_CHECK(cudaEventElapsedTime(&ms, kernels_begin, kernels_end));
      kernel_seconds += ms * 1e-3;
      h2d_bytes += static_cast<int64_t>(bytes);
      ++done;
    }
  } catch (const std::exception& e) {  // an op's failure, prefixed with its stage
    std::fprintf(stderr, "gpu_train: %s\n", e.what());
    return 1;
  }
  const double seconds = (sluice::MonotonicNanos() - start) * 1e-9;
  pipeline->Stop();

  CUDA_CHECK(cudaEventDestroy(kernels_begin));
  CUDA_CHECK(cudaEventDestroy(kernels_end));
  CUDA_CHECK(cudaStreamDestroy(stream));
  CUDA_CHECK(cudaFreeHost(staging));
  CUDA_CHECK(cudaFree(device_batch));
  CUDA_CHECK(cudaFree(x));
  CUDA_CHECK(cudaFree(y));
  CUDA_CHECK(cudaFree(w));

  std::printf(
      "gpu_train: steps=%lld seconds=%.6f gpu_kernel_seconds=%.6f gpu_busy_fraction=%.6f "
      "h2d_bytes=%lld device=\"%s\"\n",
      static_cast<long long>(done), seconds, kernel_seconds,
      seconds > 0 ? kernel_seconds / seconds : 0.0, static_cast<long long>(h2d_bytes),
      properties.name);
  return 0;
}
