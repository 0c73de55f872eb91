// Tests for the built-in image ops: decode_jpeg, resize, random_resized_crop, and every image
// op's declared properties (random_flip and normalize: flip_normalize_test.cc).
#include <turbojpeg.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "sluice/common/error.h"
#include "sluice/pipeline/element.h"
#include "sluice/pipeline/op.h"
#include "tests/common/map_ops.h"
#include "tests/pipeline/image_test_util.h"

namespace sluice::pipeline {
namespace {

using namespace image_test;  // NOLINT(google-build-using-namespace): the shared fixtures
using test_util::Apply;
using test_util::ErrorOf;
using test_util::MakeOp;

// ---------------------------------------------------------------------------------------------
// decode_jpeg

TEST(DecodeJpegTest, DecodesToHwcRgbCloseToTheSource) {
  const std::vector<uint8_t> src = Gradient(64, 48);
  auto op = MakeOp("decode_jpeg", Json::object());
  Element out = Apply(*op, JpegElement(EncodeJpeg(src, 64, 48)));

  ASSERT_EQ(out.tensors.size(), 1u);
  const Tensor& t = out.tensors[0];
  EXPECT_EQ(t.dtype(), DType::kUInt8);
  EXPECT_EQ(t.shape(), (Shape{48, 64, 3}));
  EXPECT_EQ(out.bytes, nullptr);
  EXPECT_EQ(out.path, "img/a.jpg");
  EXPECT_EQ(out.id, 7u);
  int max_diff = 0;
  for (size_t i = 0; i < src.size(); ++i) {
    max_diff = std::max(max_diff, std::abs(int{t.data<uint8_t>()[i]} - int{src[i]}));
  }
  EXPECT_LE(max_diff, 12);  // JPEG is lossy; quality 95, 4:4:4
}

// A label that rides along with the bytes stays, after the decoded image.
TEST(DecodeJpegTest, KeepsTheElementsOtherTensorsAfterTheImage) {
  auto op = MakeOp("decode_jpeg", Json::object());
  Element in = JpegElement(EncodeJpeg(Gradient(16, 8), 16, 8));
  Tensor label = Tensor::Allocate(DType::kInt64, {});
  *label.data<int64_t>() = 42;
  in.tensors.push_back(label);
  Element out = Apply(*op, std::move(in));
  ASSERT_EQ(out.tensors.size(), 2u);
  EXPECT_EQ(out.tensors[0].shape(), (Shape{8, 16, 3}));
  EXPECT_EQ(*out.tensors[1].data<int64_t>(), 42);
}

TEST(DecodeJpegTest, TargetSizePicksTheSmallestDctScalingThatKeepsTheShortSide) {
  const std::string jpeg = EncodeJpeg(Gradient(640, 480), 640, 480, TJPF_RGB, TJSAMP_420);
  auto shape_for = [&](int64_t target) {
    auto op = MakeOp("decode_jpeg", Json{{"target_size", target}});
    return Apply(*op, JpegElement(jpeg)).tensors.at(0).shape();
  };
  EXPECT_EQ(shape_for(0), (Shape{480, 640, 3}));
  EXPECT_EQ(shape_for(200), (Shape{240, 320, 3}));   // 1/2; 3/8 gives 180 < 200
  EXPECT_EQ(shape_for(100), (Shape{120, 160, 3}));   // 1/4; 1/8 gives 60 < 100
  EXPECT_EQ(shape_for(60), (Shape{60, 80, 3}));      // 1/8
  EXPECT_EQ(shape_for(300), (Shape{300, 400, 3}));   // 5/8
  EXPECT_EQ(shape_for(480), (Shape{480, 640, 3}));   // 1/1
  EXPECT_EQ(shape_for(1000), (Shape{480, 640, 3}));  // never upsamples
}

TEST(DecodeJpegTest, FastModeDecodesToo) {
  auto op = MakeOp("decode_jpeg", Json{{"fast", true}, {"target_size", 24}});
  Element out = Apply(*op, JpegElement(EncodeJpeg(Gradient(64, 48), 64, 48)));
  EXPECT_EQ(out.tensors.at(0).shape(), (Shape{24, 32, 3}));
}

TEST(DecodeJpegTest, GrayscaleBecomesThreeEqualChannels) {
  std::vector<uint8_t> gray(size_t{32} * 16);
  for (size_t i = 0; i < gray.size(); ++i) gray[i] = static_cast<uint8_t>(i % 32 * 8);
  auto op = MakeOp("decode_jpeg", Json::object());
  Element out = Apply(*op, JpegElement(EncodeJpeg(gray, 32, 16, TJPF_GRAY, TJSAMP_GRAY)));
  const Tensor& t = out.tensors.at(0);
  ASSERT_EQ(t.shape(), (Shape{16, 32, 3}));
  for (size_t i = 0; i < gray.size(); ++i) {
    const uint8_t* p = t.data<uint8_t>() + i * 3;
    EXPECT_EQ(p[0], p[1]);
    EXPECT_EQ(p[1], p[2]);
    EXPECT_NEAR(p[0], gray[i], 8);
  }
}

TEST(DecodeJpegTest, CmykIsConvertedToRgb) {
  // Adobe (inverted) CMYK: 255 = no ink, so RGB = C * K / 255.
  std::vector<uint8_t> cmyk(size_t{16} * 16 * 4);
  for (size_t i = 0; i < cmyk.size(); i += 4) {
    cmyk[i] = 200;
    cmyk[i + 1] = 100;
    cmyk[i + 2] = 50;
    cmyk[i + 3] = 128;
  }
  auto op = MakeOp("decode_jpeg", Json::object());
  Element out = Apply(*op, JpegElement(EncodeJpeg(cmyk, 16, 16, TJPF_CMYK, TJSAMP_444)));
  const Tensor& t = out.tensors.at(0);
  ASSERT_EQ(t.shape(), (Shape{16, 16, 3}));
  const uint8_t* p = t.data<uint8_t>() + ptrdiff_t{8 * 16 + 8} * 3;
  EXPECT_NEAR(p[0], 100, 4);
  EXPECT_NEAR(p[1], 50, 4);
  EXPECT_NEAR(p[2], 25, 4);
}

TEST(DecodeJpegTest, CorruptBytesThrowNamingThePath) {
  auto op = MakeOp("decode_jpeg", Json::object());
  std::string msg = ErrorOf([&] { Apply(*op, JpegElement("this is not a jpeg", "bad/x.jpg")); });
  EXPECT_NE(msg.find("bad/x.jpg"), std::string::npos) << msg;
  EXPECT_NE(msg.find("decode_jpeg"), std::string::npos) << msg;
  EXPECT_NE(msg.find("not a valid JPEG"), std::string::npos) << msg;
  EXPECT_NE(msg.find("Not a JPEG file"), std::string::npos) << msg;  // TurboJPEG's own text

  // Cut inside the headers: no image frame at all.
  const std::string jpeg = EncodeJpeg(Gradient(64, 48), 64, 48);
  for (size_t length : {size_t{20}, size_t{200}, jpeg.size() / 2}) {
    msg = ErrorOf([&] { Apply(*op, JpegElement(jpeg.substr(0, length), "bad/cut.jpg")); });
    EXPECT_NE(msg.find("bad/cut.jpg"), std::string::npos) << length << ": " << msg;
  }
}

TEST(DecodeJpegTest, TruncatedScanFailsUnlessAllowed) {
  const std::string jpeg = EncodeJpeg(Gradient(64, 48), 64, 48);
  const std::string cut = jpeg.substr(0, jpeg.size() - 10);
  auto strict = MakeOp("decode_jpeg", Json::object());
  std::string msg = ErrorOf([&] { Apply(*strict, JpegElement(cut, "bad/short.jpg")); });
  EXPECT_NE(msg.find("truncated JPEG"), std::string::npos) << msg;
  EXPECT_NE(msg.find("bad/short.jpg"), std::string::npos) << msg;

  auto lenient = MakeOp("decode_jpeg", Json{{"allow_truncated", true}});
  EXPECT_EQ(Apply(*lenient, JpegElement(cut)).tensors.at(0).shape(), (Shape{48, 64, 3}));
}

TEST(DecodeJpegTest, DecodesValidFilesAfterFailures) {
  // TurboJPEG 2.1 leaves a handle mid-header after some errors; the op must recover.
  const std::string jpeg = EncodeJpeg(Gradient(64, 48), 64, 48);
  auto op = MakeOp("decode_jpeg", Json::object());
  const Tensor reference = Apply(*op, JpegElement(jpeg)).tensors.at(0);
  for (size_t length : {size_t{20}, size_t{200}, size_t{400}, jpeg.size() - 10}) {
    try {
      Apply(*op, JpegElement(jpeg.substr(0, length)));
    } catch (const Error&) {
    }
    EXPECT_TRUE(SamePixels(Apply(*op, JpegElement(jpeg)).tensors.at(0), reference)) << length;
  }
}

TEST(DecodeJpegTest, ElementWithoutBytesIsRejected) {
  auto op = MakeOp("decode_jpeg", Json::object());
  Element e;
  e.path = "img/empty.jpg";
  std::string msg = ErrorOf([&] { Apply(*op, e); });
  EXPECT_NE(msg.find("expected JPEG bytes"), std::string::npos) << msg;
  EXPECT_NE(msg.find("img/empty.jpg"), std::string::npos) << msg;
}

TEST(DecodeJpegTest, DecodesConcurrentlyFromSeveralThreads) {
  const std::string jpeg = EncodeJpeg(Gradient(64, 48), 64, 48);
  auto op = MakeOp("decode_jpeg", Json::object());
  const Tensor reference = Apply(*op, JpegElement(jpeg)).tensors.at(0);
  std::atomic<int> mismatches{0};
  std::vector<std::thread> threads;
  threads.reserve(8);
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 25; ++i) {
        std::vector<Element> out;
        OpContext ctx{.epoch = 0, .worker = t, .stage = "stage"};
        op->Process(JpegElement(jpeg), out, ctx);
        if (out.size() != 1 || !SamePixels(out[0].tensors.at(0), reference)) ++mismatches;
      }
    });
  }
  for (std::thread& th : threads) th.join();
  EXPECT_EQ(mismatches.load(), 0);
}

TEST(DecodeJpegTest, BadArgsAreRejected) {
  EXPECT_NE(CreateError("decode_jpeg", Json{{"target_size", -1}}).find("args.target_size"),
            std::string::npos);
  std::string msg = CreateError("decode_jpeg", Json{{"targetsize", 10}});
  EXPECT_NE(msg.find("unknown argument"), std::string::npos) << msg;
  EXPECT_NE(msg.find("test.json"), std::string::npos) << msg;
  EXPECT_NE(msg.find("targetsize"), std::string::npos) << msg;
}

// ---------------------------------------------------------------------------------------------
// resize

TEST(ResizeTest, ResizesToSquareAndRectangularSizes) {
  auto square = MakeOp("resize", Json{{"size", 32}});
  Element out = Apply(*square, ImageElement<uint8_t>(48, 64, 3, Noise));
  EXPECT_EQ(out.tensors.at(0).shape(), (Shape{32, 32, 3}));
  EXPECT_EQ(out.path, "mem/img");

  auto rect = MakeOp("resize", Json{{"size", {16, 24}}});
  EXPECT_EQ(Apply(*rect, ImageElement<uint8_t>(48, 64, 3, Noise)).tensors.at(0).shape(),
            (Shape{16, 24, 3}));
  // Any channel count; enlarging works too.
  EXPECT_EQ(Apply(*rect, ImageElement<uint8_t>(5, 7, 1, Noise)).tensors.at(0).shape(),
            (Shape{16, 24, 1}));
}

TEST(ResizeTest, ConstantImageStaysConstant) {
  auto op = MakeOp("resize", Json{{"size", {10, 13}}});
  Element out = Apply(*op, ImageElement<uint8_t>(40, 30, 3, [](int64_t, int64_t, int64_t c) {
    return static_cast<uint8_t>(50 + c * 60);
  }));
  const Tensor& t = out.tensors.at(0);
  for (int64_t i = 0; i < t.num_values(); ++i) {
    ASSERT_EQ(t.data<uint8_t>()[i], 50 + (i % 3) * 60) << "at " << i;
  }
}

TEST(ResizeTest, ResizesFloatImages) {
  auto op = MakeOp("resize", Json{{"size", 8}});
  Element out =
      Apply(*op, ImageElement<float>(
                     20, 20, 2, [](int64_t, int64_t, int64_t c) { return c ? -1.5f : 0.25f; },
                     DType::kFloat32));
  const Tensor& t = out.tensors.at(0);
  ASSERT_EQ(t.dtype(), DType::kFloat32);
  ASSERT_EQ(t.shape(), (Shape{8, 8, 2}));
  for (int64_t i = 0; i < t.num_values(); ++i) {
    EXPECT_NEAR(t.data<float>()[i], i % 2 ? -1.5f : 0.25f, 1e-5);
  }
}

// The source index, weighted as the resampler weighs the pixels, that output pixel i of a side
// resized from `in` to `out` pixels reads: the exact area average of the box [i*s, (i+1)*s) with
// s = in / out when the side shrinks (partial pixels weighted by their coverage), the pixel
// centre (i + 0.5) * s - 0.5 clamped to [0, in - 1] when it grows (bilinear, edges clamped).
// On an image that is linear in x and y, the exact output is that linear function of it.
double MeanSourceIndex(int64_t in, int64_t out, int64_t i) {
  const double s = static_cast<double>(in) / static_cast<double>(out);
  if (out > in) return std::clamp((i + 0.5) * s - 0.5, 0.0, static_cast<double>(in - 1));
  const double lo = i * s, hi = (i + 1) * s;
  double sum = 0;
  for (int64_t k = static_cast<int64_t>(lo); k < in && k < hi; ++k) {
    sum += k * (std::min<double>(k + 1, hi) - std::max<double>(k, lo));
  }
  return sum / s;
}

// A smooth gradient (red 5 per column, green 4 per row, blue 2 per column and row) resized down
// about 3x, up 1.5x, and down one way and up the other, against the exact values. Tolerance:
// 1.25 levels for uint8 (half a level of rounding per pass, two passes when one side shrinks and
// the other grows, plus the 8-bit fixed-point arithmetic of OpenCV's bilinear path, which alone
// misses by up to 0.67; measured worst 1.07) and 0.01 for float32. A nearest-neighbour
// resampler misses by 2.2 (down) to 2.5 (up) levels here: half a source pixel of red.
TEST(ResizeTest, SmoothGradientMatchesTheExactAreaAverageAndBilinearValues) {
  auto gradient = [](int64_t y, int64_t x, int64_t c) {
    return static_cast<uint8_t>(c == 0 ? 5 * x : c == 1 ? 4 * y : 2 * x + 2 * y);
  };
  // From 62 x 50: shrinking 3x (area), growing, mixed, and shrinking 1.3x (bilinear).
  const std::vector<Shape> sizes = {{20, 16}, {93, 75}, {20, 75}, {93, 16}, {48, 38}};
  for (DType dtype : {DType::kUInt8, DType::kFloat32}) {
    for (const Shape& size : sizes) {
      auto op = MakeOp("resize", Json{{"size", size}});
      Element in = dtype == DType::kUInt8 ? ImageElement<uint8_t>(62, 50, 3, gradient)
                                          : ImageElement<float>(
                                                62, 50, 3,
                                                [&](int64_t y, int64_t x, int64_t c) {
                                                  return static_cast<float>(gradient(y, x, c));
                                                },
                                                DType::kFloat32);
      const Tensor t = Apply(*op, std::move(in)).tensors.at(0);
      ASSERT_EQ(t.shape(), (Shape{size[0], size[1], 3}));
      // OpenCV's bilinear path quantizes its sample positions (about 0.08 px here: 0.41 levels on
      // a slope of 5 per pixel); the area path is exact in float32.
      const bool bilinear_shrink = size == Shape{48, 38};
      const double tolerance = dtype == DType::kUInt8 ? 1.25 : bilinear_shrink ? 0.5 : 0.01;
      double worst = 0;
      for (int64_t y = 0; y < size[0]; ++y) {
        for (int64_t x = 0; x < size[1]; ++x) {
          const double sy = MeanSourceIndex(62, size[0], y), sx = MeanSourceIndex(50, size[1], x);
          const double want[3] = {5 * sx, 4 * sy, 2 * sx + 2 * sy};
          for (int64_t c = 0; c < 3; ++c) {
            const int64_t i = (y * size[1] + x) * 3 + c;
            const double got = dtype == DType::kUInt8 ? t.data<uint8_t>()[i] : t.data<float>()[i];
            worst = std::max(worst, std::abs(got - want[c]));
          }
        }
      }
      EXPECT_LE(worst, tolerance) << DTypeName(dtype) << " to " << size[0] << "x" << size[1];
    }
  }
}

// OpenCV's area resampler takes at most 4 channels; more (up to 64) go through stb_image_resize,
// shrinking and enlarging, uint8 and float32 alike. Beyond 64 the op says so.
TEST(ResizeTest, ResizesImagesOfManyChannels) {
  auto op = MakeOp("resize", Json{{"size", {7, 30}}});  // from 20 x 17: rows shrink, columns grow
  for (int64_t c : {5, 64}) {
    auto value = [](int64_t, int64_t, int64_t k) { return static_cast<uint8_t>(3 * k); };
    const Tensor t = Apply(*op, ImageElement<uint8_t>(20, 17, c, value)).tensors.at(0);
    ASSERT_EQ(t.shape(), (Shape{7, 30, c}));
    for (int64_t i = 0; i < t.num_values(); ++i) ASSERT_EQ(t.data<uint8_t>()[i], 3 * (i % c));
    const Tensor f = Apply(*op, ImageElement<float>(
                                    20, 17, c, [](int64_t, int64_t, int64_t k) { return 0.5f * k; },
                                    DType::kFloat32))
                         .tensors.at(0);
    for (int64_t i = 0; i < f.num_values(); ++i)
      ASSERT_NEAR(f.data<float>()[i], 0.5 * (i % c), 1e-4);
  }
  const std::string msg = ErrorOf([&] { Apply(*op, ImageElement<uint8_t>(4, 4, 65, Noise)); });
  EXPECT_NE(msg.find("more than 64 channels"), std::string::npos) << msg;
}

// The runtime parallelizes across elements; the resampler must not start threads of its own
// (OpenCV would, for large images, unless told otherwise).
TEST(ResizeTest, StartsNoThreads) {
  auto threads = [] {
    int n = 0;
    for (const auto& entry : std::filesystem::directory_iterator("/proc/self/task")) {
      (void)entry;
      ++n;
    }
    return n;
  };
  const int before = threads();
  auto down = MakeOp("resize", Json{{"size", {700, 600}}});
  auto up = MakeOp("resize", Json{{"size", {1500, 1400}}});
  Apply(*down, ImageElement<uint8_t>(1000, 900, 3, Noise));
  Apply(*up, ImageElement<uint8_t>(1000, 900, 3, Noise));
  EXPECT_EQ(threads(), before);
}

TEST(ResizeTest, SameSizePassesTheBufferThroughAndOtherTensorsRideAlong) {
  auto op = MakeOp("resize", Json{{"size", {48, 64}}});
  Element in = ImageElement<uint8_t>(48, 64, 3, Noise);
  in.tensors.push_back(Tensor::Allocate(DType::kInt64, {1}));
  const uint8_t* image = in.tensors[0].buffer().get();
  const uint8_t* label = in.tensors[1].buffer().get();
  Element out = Apply(*op, std::move(in));
  EXPECT_EQ(out.tensors.at(0).buffer().get(), image);
  EXPECT_EQ(out.tensors.at(1).buffer().get(), label);

  auto smaller = MakeOp("resize", Json{{"size", 8}});
  Element in2 = ImageElement<uint8_t>(48, 64, 3, Noise);
  in2.tensors.push_back(Tensor::Allocate(DType::kInt64, {1}));
  const uint8_t* label2 = in2.tensors[1].buffer().get();
  Element out2 = Apply(*smaller, std::move(in2));
  EXPECT_EQ(out2.tensors.at(0).shape(), (Shape{8, 8, 3}));
  EXPECT_EQ(out2.tensors.at(1).buffer().get(), label2);
}

TEST(ResizeTest, WrongInputIsRejected) {
  auto op = MakeOp("resize", Json{{"size", 8}});
  Element rank2;
  rank2.tensors.push_back(Tensor::Allocate(DType::kUInt8, {4, 4}));
  rank2.path = "mem/flat";
  std::string msg = ErrorOf([&] { Apply(*op, rank2); });
  EXPECT_NE(msg.find("[H, W, C]"), std::string::npos) << msg;
  EXPECT_NE(msg.find("uint8[4,4]"), std::string::npos) << msg;
  EXPECT_NE(msg.find("mem/flat"), std::string::npos) << msg;
  EXPECT_NE(msg.find("stage 'stage'"), std::string::npos) << msg;

  Element int32;
  int32.tensors.push_back(Tensor::Allocate(DType::kInt32, {4, 4, 3}));
  msg = ErrorOf([&] { Apply(*op, int32); });
  EXPECT_NE(msg.find("int32[4,4,3]"), std::string::npos) << msg;

  msg = ErrorOf([&] { Apply(*op, JpegElement("abc")); });
  EXPECT_NE(msg.find("no tensors"), std::string::npos) << msg;
  EXPECT_NE(msg.find("decode it first"), std::string::npos) << msg;
}

TEST(ResizeTest, BadArgsAreRejected) {
  std::string msg = CreateError("resize", Json{{"size", 0}});
  EXPECT_NE(msg.find("args.size"), std::string::npos) << msg;
  EXPECT_NE(CreateError("resize", Json{{"size", {10, -1}}}).find("args.size"), std::string::npos);
  EXPECT_NE(CreateError("resize", Json{{"size", {1, 2, 3}}}).find("args.size"), std::string::npos);
  EXPECT_NE(CreateError("resize", Json{{"size", "big"}}).find("args.size"), std::string::npos);
  msg = CreateError("resize", Json::object());
  EXPECT_NE(msg.find("required"), std::string::npos) << msg;
  msg = CreateError("resize", Json{{"size", 8}, {"interp", "bilinear"}});
  EXPECT_NE(msg.find("unknown argument"), std::string::npos) << msg;
}

// ---------------------------------------------------------------------------------------------
// random_resized_crop

TEST(RandomResizedCropTest, OutputHasTheRequestedSize) {
  auto op = MakeOp("random_resized_crop", Json{{"size", 24}, {"seed", 1}});
  EXPECT_EQ(Apply(*op, ImageElement<uint8_t>(48, 64, 3, Noise)).tensors.at(0).shape(),
            (Shape{24, 24, 3}));
  auto rect = MakeOp("random_resized_crop", Json{{"size", {10, 20}}, {"seed", 1}});
  EXPECT_EQ(Apply(*rect, ImageElement<uint8_t>(48, 64, 1, Noise)).tensors.at(0).shape(),
            (Shape{10, 20, 1}));
  Element f =
      Apply(*rect, ImageElement<float>(
                       30, 30, 3, [](int64_t, int64_t, int64_t) { return 2.0f; }, DType::kFloat32));
  EXPECT_EQ(f.tensors.at(0).shape(), (Shape{10, 20, 3}));
  for (int64_t i = 0; i < f.tensors[0].num_values(); ++i) {
    ASSERT_NEAR(f.tensors[0].data<float>()[i], 2.0f, 1e-5);
  }
}

TEST(RandomResizedCropTest, ReproduciblePerSeedEpochAndElement) {
  auto op = MakeOp("random_resized_crop", Json{{"size", 24}, {"seed", 42}});
  auto again = MakeOp("random_resized_crop", Json{{"size", 24}, {"seed", 42}});
  auto crop = [](MapOp& o, uint64_t id, int64_t epoch) {
    Element e = ImageElement<uint8_t>(48, 64, 3, Noise, DType::kUInt8, id);
    return Apply(o, std::move(e), epoch).tensors.at(0);
  };
  // Same seed, epoch and id: the same crop, from another instance too.
  EXPECT_TRUE(SamePixels(crop(*op, 3, 0), crop(*op, 3, 0)));
  EXPECT_TRUE(SamePixels(crop(*op, 3, 0), crop(*again, 3, 0)));
  EXPECT_TRUE(SamePixels(crop(*op, 3, 5), crop(*again, 3, 5)));
  // Another epoch or another element: another crop.
  EXPECT_FALSE(SamePixels(crop(*op, 3, 0), crop(*op, 3, 1)));
  EXPECT_FALSE(SamePixels(crop(*op, 3, 0), crop(*op, 4, 0)));
  // Another seed: another crop.
  auto other = MakeOp("random_resized_crop", Json{{"size", 24}, {"seed", 43}});
  EXPECT_FALSE(SamePixels(crop(*op, 3, 0), crop(*other, 3, 0)));
}

TEST(RandomResizedCropTest, FullScaleAndMatchingRatioIsAPlainResize) {
  const double ratio = 64.0 / 48.0;
  auto crop =
      MakeOp("random_resized_crop",
             Json{{"size", 24}, {"scale", {1.0, 1.0}}, {"ratio", {ratio, ratio}}, {"seed", 9}});
  auto resize = MakeOp("resize", Json{{"size", 24}});
  Tensor a = Apply(*crop, ImageElement<uint8_t>(48, 64, 3, Noise)).tensors.at(0);
  Tensor b = Apply(*resize, ImageElement<uint8_t>(48, 64, 3, Noise)).tensors.at(0);
  EXPECT_TRUE(SamePixels(a, b));
}

TEST(RandomResizedCropTest, ImpossibleRatioFallsBackToACentreCrop) {
  // A 10:1 crop cannot fit a square image, so every attempt fails and the centre crop clamps
  // the ratio: full width, height 100 / 10 = 10 rows in the middle (rows 45..54).
  auto op = MakeOp(
      "random_resized_crop",
      Json{{"size", {10, 100}}, {"scale", {1.0, 1.0}}, {"ratio", {10.0, 10.0}}, {"seed", 1}});
  Element in = ImageElement<uint8_t>(
      100, 100, 1, [](int64_t y, int64_t, int64_t) { return static_cast<uint8_t>(y); });
  const Tensor t = Apply(*op, std::move(in)).tensors.at(0);
  ASSERT_EQ(t.shape(), (Shape{10, 100, 1}));
  for (int64_t y = 0; y < 10; ++y) EXPECT_EQ(t.data<uint8_t>()[y * 100 + 50], 45 + y);
}

TEST(RandomResizedCropTest, BadArgsAreRejected) {
  EXPECT_NE(CreateError("random_resized_crop", Json::object()).find("args.size"),
            std::string::npos);
  EXPECT_NE(CreateError("random_resized_crop", Json{{"size", -3}}).find("args.size"),
            std::string::npos);
  std::string msg = CreateError("random_resized_crop", Json{{"size", 8}, {"scale", {0.5, 0.2}}});
  EXPECT_NE(msg.find("args.scale"), std::string::npos) << msg;
  EXPECT_NE(CreateError("random_resized_crop", Json{{"size", 8}, {"scale", {0.0, 1.0}}})
                .find("args.scale"),
            std::string::npos);
  EXPECT_NE(CreateError("random_resized_crop", Json{{"size", 8}, {"scale", {0.5, 1.5}}})
                .find("args.scale"),
            std::string::npos);
  EXPECT_NE(
      CreateError("random_resized_crop", Json{{"size", 8}, {"scale", {0.5}}}).find("args.scale"),
      std::string::npos);
  EXPECT_NE(CreateError("random_resized_crop", Json{{"size", 8}, {"ratio", {2.0, 1.0}}})
                .find("args.ratio"),
            std::string::npos);
  EXPECT_NE(CreateError("random_resized_crop", Json{{"size", 8}, {"ratio", {0.0, 1.0}}})
                .find("args.ratio"),
            std::string::npos);
  EXPECT_NE(CreateError("random_resized_crop", Json{{"size", 8}, {"seed", "x"}}).find("args.seed"),
            std::string::npos);
  msg = CreateError("random_resized_crop", Json{{"size", 8}, {"scales", {0.5, 1.0}}});
  EXPECT_NE(msg.find("unknown argument"), std::string::npos) << msg;
}

// ---------------------------------------------------------------------------------------------

TEST(ImageOpsTest, DeclareTheirProperties) {
  struct Case {
    const char* name;
    Json args;
    bool deterministic;
  };
  const Case cases[] = {{"decode_jpeg", Json::object(), true},
                        {"resize", Json{{"size", 8}}, true},
                        {"random_resized_crop", Json{{"size", 8}}, false},
                        {"random_flip", Json::object(), false},
                        {"normalize", Json::object(), true}};
  for (const Case& c : cases) {
    auto op = MakeOp(c.name, c.args);
    OpProperties p = op->properties();
    EXPECT_EQ(p.kind, OpKind::kMap) << c.name;
    EXPECT_TRUE(p.parallelizable) << c.name;
    EXPECT_TRUE(p.stateless) << c.name;
    EXPECT_EQ(p.deterministic, c.deterministic) << c.name;
  }
}

}  // namespace
}  // namespace sluice::pipeline
