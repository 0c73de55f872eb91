// Tests for the built-in image ops random_flip and normalize.
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
// random_flip

TEST(RandomFlipTest, AlwaysFlipsWithPOne) {
  auto op = MakeOp("random_flip", Json{{"p", 1.0}, {"seed", 3}});
  Element in = ImageElement<uint8_t>(5, 7, 3, Noise);
  const Tensor src = in.tensors[0];
  Element out = Apply(*op, std::move(in));
  const Tensor& t = out.tensors.at(0);
  ASSERT_EQ(t.shape(), (Shape{5, 7, 3}));
  EXPECT_NE(t.buffer().get(), src.buffer().get());
  for (int64_t y = 0; y < 5; ++y) {
    for (int64_t x = 0; x < 7; ++x) {
      for (int64_t c = 0; c < 3; ++c) {
        EXPECT_EQ(t.data<uint8_t>()[(y * 7 + x) * 3 + c], Noise(y, 6 - x, c));
        EXPECT_EQ(src.data<uint8_t>()[(y * 7 + x) * 3 + c], Noise(y, x, c));  // input untouched
      }
    }
  }
}

TEST(RandomFlipTest, FlipsOtherChannelCountsAndDtypes) {
  auto op = MakeOp("random_flip", Json{{"p", 1.0}});
  for (int64_t channels : {1, 2, 4, 5}) {
    Element out = Apply(*op, ImageElement<uint8_t>(3, 4, channels, Noise));
    for (int64_t x = 0; x < 4; ++x) {
      for (int64_t c = 0; c < channels; ++c) {
        EXPECT_EQ(out.tensors[0].data<uint8_t>()[(int64_t{2} * 4 + x) * channels + c],
                  Noise(2, 3 - x, c));
      }
    }
  }
  Element f = Apply(*op, ImageElement<float>(
                             2, 3, 3,
                             [](int64_t y, int64_t x, int64_t c) {
                               return static_cast<float>(y * 100 + x * 10 + c);
                             },
                             DType::kFloat32));
  EXPECT_EQ(f.tensors[0].data<float>()[(1 * 3 + 0) * 3 + 2], 122.0f);
}

TEST(RandomFlipTest, NeverFlipsWithPZeroAndSharesTheBuffer) {
  auto op = MakeOp("random_flip", Json{{"p", 0.0}});
  Element in = ImageElement<uint8_t>(5, 7, 3, Noise);
  const uint8_t* buffer = in.tensors[0].buffer().get();
  Element out = Apply(*op, std::move(in));
  EXPECT_EQ(out.tensors.at(0).buffer().get(), buffer);
}

TEST(RandomFlipTest, FlipsAboutHalfReproducibly) {
  auto op = MakeOp("random_flip", Json{{"seed", 11}});
  auto flipped = [&](uint64_t id, int64_t epoch) {
    Element in = ImageElement<uint8_t>(1, 2, 1, Noise, DType::kUInt8, id);
    const uint8_t* buffer = in.tensors[0].buffer().get();
    return Apply(*op, std::move(in), epoch).tensors.at(0).buffer().get() != buffer;
  };
  int count = 0, same_as_epoch0 = 0;
  for (uint64_t id = 0; id < 400; ++id) {
    const bool f = flipped(id, 0);
    count += f;
    EXPECT_EQ(f, flipped(id, 0));
    same_as_epoch0 += f == flipped(id, 1);
  }
  EXPECT_GT(count, 140);
  EXPECT_LT(count, 260);
  EXPECT_LT(same_as_epoch0, 300);  // epochs draw independently (about 200 agree)
}

TEST(RandomFlipTest, BadArgsAreRejected) {
  std::string msg = CreateError("random_flip", Json{{"p", 1.5}});
  EXPECT_NE(msg.find("args.p"), std::string::npos) << msg;
  EXPECT_NE(CreateError("random_flip", Json{{"p", -0.1}}).find("args.p"), std::string::npos);
  msg = CreateError("random_flip", Json{{"prob", 0.5}});
  EXPECT_NE(msg.find("unknown argument"), std::string::npos) << msg;
}

// ---------------------------------------------------------------------------------------------
// normalize

float Expected(uint8_t x, double mean, double std) {
  return static_cast<float>((x / 255.0 - mean) / std);
}

TEST(NormalizeTest, NormalizesWithImageNetDefaultsInHwc) {
  auto op = MakeOp("normalize", Json::object());
  Element out = Apply(*op, ImageElement<uint8_t>(4, 5, 3, Noise));
  const Tensor& t = out.tensors.at(0);
  ASSERT_EQ(t.dtype(), DType::kFloat32);
  ASSERT_EQ(t.shape(), (Shape{4, 5, 3}));
  const double mean[] = {0.485, 0.456, 0.406}, std[] = {0.229, 0.224, 0.225};
  for (int64_t y = 0; y < 4; ++y) {
    for (int64_t x = 0; x < 5; ++x) {
      for (int64_t c = 0; c < 3; ++c) {
        EXPECT_NEAR(t.data<float>()[(y * 5 + x) * 3 + c], Expected(Noise(y, x, c), mean[c], std[c]),
                    1e-5);
      }
    }
  }
}

TEST(NormalizeTest, ChwLayoutAndCustomArgs) {
  auto op =
      MakeOp("normalize",
             Json{{"mean", {0.5, 0.25}}, {"std", {0.5, 2.0}}, {"scale", 0.01}, {"layout", "chw"}});
  Element out = Apply(*op, ImageElement<uint8_t>(3, 4, 2, Noise));
  const Tensor& t = out.tensors.at(0);
  ASSERT_EQ(t.shape(), (Shape{2, 3, 4}));
  const double mean[] = {0.5, 0.25}, std[] = {0.5, 2.0};
  for (int64_t c = 0; c < 2; ++c) {
    for (int64_t y = 0; y < 3; ++y) {
      for (int64_t x = 0; x < 4; ++x) {
        EXPECT_NEAR(t.data<float>()[(c * 3 + y) * 4 + x],
                    (Noise(y, x, c) * 0.01 - mean[c]) / std[c], 1e-5);
      }
    }
  }
}

TEST(NormalizeTest, ThreeChannelChwInOnePass) {
  auto op = MakeOp("normalize", Json{{"layout", "chw"}});
  Element out = Apply(*op, ImageElement<uint8_t>(5, 7, 3, Noise));
  const Tensor& t = out.tensors.at(0);
  ASSERT_EQ(t.shape(), (Shape{3, 5, 7}));
  const double mean[] = {0.485, 0.456, 0.406}, std[] = {0.229, 0.224, 0.225};
  for (int64_t c = 0; c < 3; ++c) {
    for (int64_t y = 0; y < 5; ++y) {
      for (int64_t x = 0; x < 7; ++x) {
        EXPECT_NEAR(t.data<float>()[(c * 5 + y) * 7 + x], Expected(Noise(y, x, c), mean[c], std[c]),
                    1e-5);
      }
    }
  }
}

// uint8 output for jobs that normalize on the GPU: the values pass unchanged, only the layout
// changes; mean/std/scale would have no effect and are refused.
TEST(NormalizeTest, Uint8OutputKeepsTheValues) {
  auto chw = MakeOp("normalize", Json{{"layout", "chw"}, {"dtype", "uint8"}});
  Element out = Apply(*chw, ImageElement<uint8_t>(3, 4, 3, Noise));
  const Tensor& t = out.tensors.at(0);
  ASSERT_EQ(t.dtype(), DType::kUInt8);
  ASSERT_EQ(t.shape(), (Shape{3, 3, 4}));
  for (int64_t c = 0; c < 3; ++c) {
    for (int64_t y = 0; y < 3; ++y) {
      for (int64_t x = 0; x < 4; ++x) {
        EXPECT_EQ(t.data<uint8_t>()[(c * 3 + y) * 4 + x], Noise(y, x, c));
      }
    }
  }
  auto hwc = MakeOp("normalize", Json{{"dtype", "uint8"}});
  Element in = ImageElement<uint8_t>(2, 2, 1, Noise);
  const uint8_t* before = in.tensors.at(0).data<uint8_t>();
  Element same = Apply(*hwc, std::move(in));
  EXPECT_EQ(same.tensors.at(0).data<uint8_t>(), before);  // passed through, no copy
  EXPECT_NE(CreateError("normalize", Json{{"dtype", "uint8"}, {"mean", {0.5, 0.5, 0.5}}})
                .find("args.mean"),
            std::string::npos);
  EXPECT_NE(CreateError("normalize", Json{{"dtype", "float16"}}).find("args.dtype"),
            std::string::npos);
}

TEST(NormalizeTest, FloatInput) {
  auto op = MakeOp("normalize", Json{{"mean", 1.0}, {"std", 2.0}, {"scale", 1.0}});
  Element out =
      Apply(*op, ImageElement<float>(
                     2, 2, 1, [](int64_t y, int64_t x, int64_t) { return float(y * 2 + x); },
                     DType::kFloat32));
  const Tensor& t = out.tensors.at(0);
  ASSERT_EQ(t.shape(), (Shape{2, 2, 1}));
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(t.data<float>()[i], (i - 1.0) / 2.0, 1e-6);
}

TEST(NormalizeTest, ChannelCountMismatchIsRejectedAtProcessTime) {
  auto op = MakeOp("normalize", Json::object());
  std::string msg = ErrorOf([&] { Apply(*op, ImageElement<uint8_t>(2, 2, 1, Noise)); });
  EXPECT_NE(msg.find("1 channels"), std::string::npos) << msg;
  EXPECT_NE(msg.find("3 values"), std::string::npos) << msg;
}

TEST(NormalizeTest, BadArgsAreRejected) {
  std::string msg = CreateError("normalize", Json{{"mean", {0.5, 0.5}}, {"std", {0.5}}});
  EXPECT_NE(msg.find("args.std"), std::string::npos) << msg;
  EXPECT_NE(CreateError("normalize", Json{{"std", {0.2, 0.0, 0.2}}}).find("args.std"),
            std::string::npos);
  EXPECT_NE(CreateError("normalize", Json{{"layout", "nhwc"}}).find("args.layout"),
            std::string::npos);
  EXPECT_NE(CreateError("normalize", Json{{"scale", 0}}).find("args.scale"), std::string::npos);
  msg = CreateError("normalize", Json{{"means", {0.5}}});
  EXPECT_NE(msg.find("unknown argument"), std::string::npos) << msg;
}

}  // namespace
}  // namespace sluice::pipeline
