// Image fixtures shared by the image op tests: JPEG encoding, synthetic images, comparisons.
#pragma once

#include <turbojpeg.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "sluice/common/error.h"
#include "sluice/pipeline/element.h"
#include "sluice/pipeline/op.h"
#include "tests/common/map_ops.h"

namespace sluice::pipeline::image_test {

using Json = OpArgs::Json;

inline std::string CreateError(const std::string& name, const Json& json) {
  return test_util::ErrorOf([&] { test_util::MakeOp(name, json); });
}

// An RGB gradient, w x h: red follows x, green follows y, blue is constant.
inline std::vector<uint8_t> Gradient(int w, int h) {
  std::vector<uint8_t> px(static_cast<size_t>(w) * h * 3);
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      uint8_t* p = &px[(static_cast<size_t>(y) * w + x) * 3];
      p[0] = static_cast<uint8_t>(x * 255 / std::max(1, w - 1));
      p[1] = static_cast<uint8_t>(y * 255 / std::max(1, h - 1));
      p[2] = 128;
    }
  }
  return px;
}

// Encodes packed pixels of `pixel_format` as a JPEG file's contents.
inline std::string EncodeJpeg(const std::vector<uint8_t>& pixels, int w, int h,
                              int pixel_format = TJPF_RGB, int subsamp = TJSAMP_444) {
  tjhandle tj = tjInitCompress();
  EXPECT_NE(tj, nullptr);
  unsigned char* jpeg = nullptr;
  unsigned long size = 0;
  int rc = tjCompress2(tj, pixels.data(), w, 0, h, pixel_format, &jpeg, &size, subsamp, 95, 0);
  EXPECT_EQ(rc, 0) << tjGetErrorStr2(tj);
  std::string out(reinterpret_cast<const char*>(jpeg), size);
  tjFree(jpeg);
  tjDestroy(tj);
  return out;
}

inline Element JpegElement(std::string jpeg, std::string path = "img/a.jpg", uint64_t id = 7) {
  Element e;
  e.bytes = std::make_shared<const std::string>(std::move(jpeg));
  e.path = std::move(path);
  e.id = id;
  return e;
}

// An element holding one [h, w, c] tensor filled by fn(y, x, c).
template <typename T = uint8_t>
Element ImageElement(int64_t h, int64_t w, int64_t c,
                     const std::function<T(int64_t, int64_t, int64_t)>& fn,
                     DType dtype = DType::kUInt8, uint64_t id = 1) {
  Tensor t = Tensor::Allocate(dtype, {h, w, c});
  T* p = t.data<T>();
  for (int64_t y = 0; y < h; ++y) {
    for (int64_t x = 0; x < w; ++x) {
      for (int64_t k = 0; k < c; ++k) p[(y * w + x) * c + k] = fn(y, x, k);
    }
  }
  Element e;
  e.tensors.push_back(std::move(t));
  e.path = "mem/img";
  e.id = id;
  return e;
}

// A pseudo-random pattern, so that different crops give different pixels.
inline uint8_t Noise(int64_t y, int64_t x, int64_t c) {
  return static_cast<uint8_t>(
      MixSeed(static_cast<uint64_t>(y * 1000 + x), static_cast<uint64_t>(c)));
}

inline bool SamePixels(const Tensor& a, const Tensor& b) {
  return a.dtype() == b.dtype() && a.shape() == b.shape() &&
         std::equal(a.data<uint8_t>(), a.data<uint8_t>() + a.byte_size(), b.data<uint8_t>());
}

using Shape = std::vector<int64_t>;

}  // namespace sluice::pipeline::image_test
