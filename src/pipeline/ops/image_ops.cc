// Built-in image ops: decode_jpeg, resize, random_resized_crop, random_flip and normalize.
#include <turbojpeg.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "pipeline/ops/image_common.h"
#include "sluice/common/error.h"
#include "sluice/pipeline/element.h"
#include "sluice/pipeline/op.h"

namespace sluice::pipeline {
namespace {

using namespace image;  // NOLINT(google-build-using-namespace): the ops' own helpers

// ---------------------------------------------------------------------------------------------
// decode_jpeg

// One TurboJPEG decompressor per thread: handles are not thread-safe, and creating one per
// image would allocate the decompressor's state per image.
class ThreadDecompressor {
 public:
  // The calling thread's handle, created on first use and destroyed at thread exit.
  static tjhandle Get() {
    Holder& h = Local();
    if (h.handle == nullptr) {
      h.handle = tjInitDecompress();
      if (h.handle == nullptr) {
        Fail("decode_jpeg: cannot create a TurboJPEG decompressor: {}", tjGetErrorStr2(nullptr));
      }
    }
    return h.handle;
  }
  // Drops the calling thread's handle. After a failed call TurboJPEG 2.1 can leave the
  // decompressor part-way through a header (tjDecompressHeader3 does not abort it on error), and
  // the next header read on that handle then misparses a valid file; so every failure gets a
  // fresh handle. Failures are rare, so this costs nothing on the hot path.
  static void Reset() {
    Holder& h = Local();
    if (h.handle != nullptr) tjDestroy(h.handle);
    h.handle = nullptr;
  }

 private:
  struct Holder {
    tjhandle handle = nullptr;
    ~Holder() {
      if (handle != nullptr) tjDestroy(handle);
    }
  };
  static Holder& Local() {
    thread_local Holder holder;
    return holder;
  }
};

std::span<const tjscalingfactor> ScalingFactors() {
  static const std::span<const tjscalingfactor> factors = [] {
    int n = 0;
    const tjscalingfactor* f = tjGetScalingFactors(&n);
    return f == nullptr ? std::span<const tjscalingfactor>()
                        : std::span<const tjscalingfactor>(f, static_cast<size_t>(n));
  }();
  return factors;
}

// Decodes JPEG bytes into uint8 [H, W, 3] RGB, optionally shrinking in the DCT domain, which
// skips most of the inverse DCT and colour conversion work for a smaller output.
class DecodeJpegOp : public MapOp {
 public:
  explicit DecodeJpegOp(OpArgs& args) {
    target_size_ = args.Int("target_size", 0);
    if (target_size_ < 0) {
      args.Fail("target_size", fmt::format("must be >= 0 (0 = full size), got {}", target_size_));
    }
    if (args.Bool("fast", false)) flags_ |= TJFLAG_FASTDCT | TJFLAG_FASTUPSAMPLE;
    allow_truncated_ = args.Bool("allow_truncated", false);
    args.Finish();
  }

  OpProperties properties() const override {
    return {.kind = OpKind::kMap, .parallelizable = true, .deterministic = true, .stateless = true};
  }

  std::optional<int64_t> EpochOutputs(std::optional<int64_t> in) const override { return in; }
  void Process(Element in, std::vector<Element>& out, const OpContext& ctx) override {
    if (!in.bytes || in.bytes->empty()) {
      FailElement(ctx, "decode_jpeg", in,
                  in.tensors.empty()
                      ? "expected JPEG bytes (from read_file), got an element with no bytes"
                      : fmt::format("expected JPEG bytes (from read_file), got no bytes and "
                                    "tensor {} (already decoded?)",
                                    in.tensors.front().Describe()));
    }
    tjhandle tj = ThreadDecompressor::Get();
    const auto* jpeg = reinterpret_cast<const unsigned char*>(in.bytes->data());
    const auto jpeg_size = static_cast<unsigned long>(in.bytes->size());

    int width = 0, height = 0, subsamp = 0, colorspace = 0;
    const int rc = tjDecompressHeader3(tj, jpeg, jpeg_size, &width, &height, &subsamp, &colorspace);
    if (rc != 0 || width <= 0 || height <= 0) {
      // rc 0 without a size: the data ended before the first frame (only tables were found).
      std::string why = rc != 0 ? tjGetErrorStr2(tj)
                                : fmt::format("no image frame found ({})", tjGetErrorStr2(tj));
      ThreadDecompressor::Reset();
      FailElement(ctx, "decode_jpeg", in, fmt::format("not a valid JPEG: {}", why));
    }
    const auto [out_w, out_h] = ScaledSize(width, height);

    Tensor image = Tensor::Allocate(DType::kUInt8, {out_h, out_w, 3});
    if (colorspace == TJCS_CMYK || colorspace == TJCS_YCCK) {
      // libjpeg cannot convert CMYK to RGB itself: decode CMYK into per-thread scratch.
      thread_local std::vector<uint8_t> cmyk;
      cmyk.resize(static_cast<size_t>(out_w * out_h * 4));
      Decompress(tj, jpeg, jpeg_size, cmyk.data(), out_w, out_h, TJPF_CMYK, ctx, in);
      CmykToRgb(cmyk.data(), image.data<uint8_t>(), out_w * out_h);
    } else {
      Decompress(tj, jpeg, jpeg_size, image.data<uint8_t>(), out_w, out_h, TJPF_RGB, ctx, in);
    }

    in.bytes.reset();  // the encoded data is no longer needed downstream
    // The image goes first; tensors the element already carries (a label) follow it.
    in.tensors.insert(in.tensors.begin(), std::move(image));
    out.push_back(std::move(in));
  }

 private:
  // The output [width, height]: with target_size, the smallest DCT scaling (never above 1/1)
  // whose shorter side is still >= target_size; full size when none qualifies.
  std::pair<int64_t, int64_t> ScaledSize(int width, int height) const {
    int64_t best_w = width, best_h = height;
    if (target_size_ <= 0) return {best_w, best_h};
    for (const tjscalingfactor& f : ScalingFactors()) {
      if (f.num > f.denom) continue;  // never upsample
      const int64_t w = TJSCALED(width, f), h = TJSCALED(height, f);
      if (std::min(w, h) >= target_size_ && w * h < best_w * best_h) {
        best_w = w;
        best_h = h;
      }
    }
    return {best_w, best_h};
  }

  // Decompresses into `dst` (w x h pixels of `pixel_format`). TurboJPEG picks the largest
  // scaling factor that fits w x h, which is the one ScaledSize chose. Like PIL, warnings about
  // damaged but complete data (extraneous bytes before a marker, common in real data sets)
  // still yield the image, while a truncated file fails unless args.allow_truncated is set (its
  // missing rows would come out grey). TurboJPEG 2.1 reports no warning codes, so truncation is
  // recognized by libjpeg's message for it (JWRN_JPEG_EOF), unchanged since libjpeg 6.
  void Decompress(tjhandle tj, const unsigned char* jpeg, unsigned long jpeg_size, uint8_t* dst,
                  int64_t w, int64_t h, int pixel_format, const OpContext& ctx,
                  const Element& in) const {
    const int pitch = static_cast<int>(w * tjPixelSize[pixel_format]);
    if (tjDecompress2(tj, jpeg, jpeg_size, dst, static_cast<int>(w), pitch, static_cast<int>(h),
                      pixel_format, flags_) == 0) {
      return;
    }
    const bool fatal = tjGetErrorCode(tj) != TJERR_WARNING;
    const std::string why = tjGetErrorStr2(tj);
    ThreadDecompressor::Reset();
    if (fatal) FailElement(ctx, "decode_jpeg", in, fmt::format("cannot decode JPEG: {}", why));
    if (!allow_truncated_ && why.find("Premature end of JPEG file") != std::string::npos) {
      FailElement(ctx, "decode_jpeg", in,
                  fmt::format("truncated JPEG ({}); set args.allow_truncated to decode what is "
                              "there",
                              why));
    }
  }

  int64_t target_size_ = 0;
  int flags_ = 0;
  bool allow_truncated_ = false;
};

SLUICE_REGISTER_OP("decode_jpeg", DecodeJpegOp);

// ---------------------------------------------------------------------------------------------
// resize

// Resizes the image to a fixed [h, w] with stb_image_resize (Mitchell filter when shrinking,
// Catmull-Rom when enlarging; edges clamped).
class ResizeOp : public MapOp {
 public:
  explicit ResizeOp(OpArgs& args) {
    std::tie(height_, width_) = SizeArg(args);
    args.Finish();
  }

  OpProperties properties() const override {
    return {.kind = OpKind::kMap, .parallelizable = true, .deterministic = true, .stateless = true};
  }

  std::optional<int64_t> EpochOutputs(std::optional<int64_t> in) const override { return in; }
  void Process(Element in, std::vector<Element>& out, const OpContext& ctx) override {
    const Tensor& src = ImageOf(in, ctx, "resize", {DType::kUInt8, DType::kFloat32});
    if (src.dim(0) != height_ || src.dim(1) != width_) {
      in.tensors.front() =
          ResizeRegion(src, 0, 0, src.dim(0), src.dim(1), height_, width_, ctx, "resize", in);
    }  // else already the right size: pass the buffer through
    out.push_back(std::move(in));
  }

 private:
  int64_t height_ = 0, width_ = 0;
};

SLUICE_REGISTER_OP("resize", ResizeOp);

// ---------------------------------------------------------------------------------------------
// random_resized_crop

// torchvision's RandomResizedCrop: a crop of random area fraction (uniform in `scale`) and
// aspect ratio (log-uniform in `ratio`), resized to `size`. Draws depend only on the seed, the
// epoch and the element id, so a parallel stage crops the same way whatever thread runs it.
class RandomResizedCropOp : public MapOp {
 public:
  explicit RandomResizedCropOp(OpArgs& args) : sampler_(args) { args.Finish(); }

  OpProperties properties() const override {
    return {
        .kind = OpKind::kMap, .parallelizable = true, .deterministic = false, .stateless = true};
  }

  std::optional<int64_t> EpochOutputs(std::optional<int64_t> in) const override { return in; }
  void Process(Element in, std::vector<Element>& out, const OpContext& ctx) override {
    const Tensor& src = ImageOf(in, ctx, "random_resized_crop", {DType::kUInt8, DType::kFloat32});
    const int64_t img_h = src.dim(0), img_w = src.dim(1);
    const int64_t height = sampler_.height(), width = sampler_.width();
    SplitMix64 rng = ElementRng(sampler_.seed(), ctx, in);
    const Crop c = sampler_.Draw(rng, img_h, img_w);
    if (c.h == img_h && c.w == img_w && img_h == height && img_w == width) {
      out.push_back(std::move(in));  // the whole image at its own size: nothing to do
      return;
    }
    in.tensors.front() =
        ResizeRegion(src, c.top, c.left, c.h, c.w, height, width, ctx, "random_resized_crop", in);
    out.push_back(std::move(in));
  }

 private:
  CropSampler sampler_;
};

SLUICE_REGISTER_OP("random_resized_crop", RandomResizedCropOp);

// ---------------------------------------------------------------------------------------------
// random_flip

// Mirrors rows of `pixel` bytes per pixel; a fixed kPixel lets memcpy become plain moves.
template <size_t kPixel>
void MirrorRows(const uint8_t* src, uint8_t* dst, int64_t rows, int64_t width, size_t pixel) {
  const size_t p = kPixel != 0 ? kPixel : pixel;
  const size_t row = static_cast<size_t>(width) * p;
  for (int64_t r = 0; r < rows; ++r, src += row, dst += row) {
    uint8_t* d = dst + row - p;
    for (int64_t x = 0; x < width; ++x, d -= p) std::memcpy(d, src + static_cast<size_t>(x) * p, p);
  }
}

// Flips the image left to right with probability p; an unflipped element passes through as is.
class RandomFlipOp : public MapOp {
 public:
  explicit RandomFlipOp(OpArgs& args) {
    p_ = args.Double("p", 0.5);
    if (!(p_ >= 0.0 && p_ <= 1.0)) args.Fail("p", fmt::format("must be in [0, 1], got {}", p_));
    seed_ = MixSeed(args.Seed("seed"), kFlipSalt);
    args.Finish();
  }

  OpProperties properties() const override {
    return {
        .kind = OpKind::kMap, .parallelizable = true, .deterministic = false, .stateless = true};
  }

  std::optional<int64_t> EpochOutputs(std::optional<int64_t> in) const override { return in; }
  void Process(Element in, std::vector<Element>& out, const OpContext& ctx) override {
    const Tensor& src = ImageOf(in, ctx, "random_flip",
                                {DType::kUInt8, DType::kInt32, DType::kInt64, DType::kFloat32});
    if (ElementRng(seed_, ctx, in).Uniform() < p_) {
      Tensor flipped = Tensor::Allocate(src.dtype(), src.shape());
      const size_t pixel = static_cast<size_t>(src.dim(2)) * DTypeSize(src.dtype());
      const uint8_t* s = src.data<uint8_t>();
      uint8_t* d = flipped.data<uint8_t>();
      switch (pixel) {
        case 1:
          MirrorRows<1>(s, d, src.dim(0), src.dim(1), pixel);
          break;
        case 3:
          MirrorRows<3>(s, d, src.dim(0), src.dim(1), pixel);
          break;
        case 4:
          MirrorRows<4>(s, d, src.dim(0), src.dim(1), pixel);
          break;
        case 12:
          MirrorRows<12>(s, d, src.dim(0), src.dim(1), pixel);
          break;
        default:
          MirrorRows<0>(s, d, src.dim(0), src.dim(1), pixel);
          break;
      }
      in.tensors.front() = std::move(flipped);
    }
    out.push_back(std::move(in));
  }

 private:
  double p_ = 0.5;
  uint64_t seed_ = 0;
};

SLUICE_REGISTER_OP("random_flip", RandomFlipOp);

// ---------------------------------------------------------------------------------------------
// normalize

// uint8 (or float32) [H, W, C] -> float32 (x * scale - mean[c]) / std[c], as [H, W, C] or
// [C, H, W]. For uint8 input every output value comes from a 256-entry table per channel,
// computed in double once, so the result is the exact formula at the cost of one load.
class NormalizeOp : public MapOp {
 public:
  explicit NormalizeOp(OpArgs& args) {
    mean_ = args.Doubles("mean", std::vector<double>{0.485, 0.456, 0.406});
    std_ = args.Doubles("std", std::vector<double>{0.229, 0.224, 0.225});
    scale_ = args.Double("scale", 1.0 / 255.0);
    const std::string layout = args.String("layout", "hwc");
    if (layout == "chw") {
      chw_ = true;
    } else if (layout != "hwc") {
      args.Fail("layout", fmt::format("expected \"hwc\" or \"chw\", got \"{}\"", layout));
    }
    if (mean_.empty()) args.Fail("mean", "expected one value per channel, got none");
    if (std_.size() != mean_.size()) {
      args.Fail("std", fmt::format("has {} values but mean has {}: give one of each per channel",
                                   std_.size(), mean_.size()));
    }
    for (double s : std_) {
      if (!(s != 0.0 && std::isfinite(s))) {
        args.Fail("std", fmt::format("values must be finite and non-zero, got {}", s));
      }
    }
    if (!(std::isfinite(scale_) && scale_ != 0.0)) {
      args.Fail("scale", fmt::format("must be finite and non-zero, got {}", scale_));
    }
    // uint8 output: only the layout changes, for jobs that normalize on the GPU (a quarter of the
    // bytes to batch and copy to the device).
    const std::string dtype = args.String("dtype", "float32");
    if (dtype == "uint8") {
      uint8_out_ = true;
      for (std::string_view key : {"mean", "std", "scale"}) {
        if (args.Has(key)) {
          args.Fail(key,
                    "has no effect with \"dtype\": \"uint8\" (the values pass unchanged, to be "
                    "normalized on the GPU): remove it");
        }
      }
    } else if (dtype != "float32") {
      args.Fail("dtype", fmt::format("expected \"float32\" or \"uint8\", got \"{}\"", dtype));
    }
    args.Finish();

    const size_t channels = mean_.size();
    lut_.resize(channels * 256);
    mul_.resize(channels);
    add_.resize(channels);
    for (size_t c = 0; c < channels; ++c) {
      for (int v = 0; v < 256; ++v) {
        lut_[c * 256 + v] = static_cast<float>((v * scale_ - mean_[c]) / std_[c]);
      }
      mul_[c] = static_cast<float>(scale_ / std_[c]);
      add_[c] = static_cast<float>(-mean_[c] / std_[c]);
    }
  }

  OpProperties properties() const override {
    return {.kind = OpKind::kMap, .parallelizable = true, .deterministic = true, .stateless = true};
  }

  std::optional<int64_t> EpochOutputs(std::optional<int64_t> in) const override { return in; }
  void Process(Element in, std::vector<Element>& out, const OpContext& ctx) override {
    const Tensor& src = ImageOf(in, ctx, "normalize", {DType::kUInt8, DType::kFloat32});
    const int64_t h = src.dim(0), w = src.dim(1), channels = src.dim(2);
    if (!uint8_out_ && static_cast<size_t>(channels) != mean_.size()) {
      FailElement(ctx, "normalize", in,
                  fmt::format("image {} has {} channels but args.mean and args.std have {} "
                              "values: give one per channel",
                              src.Describe(), channels, mean_.size()));
    }
    const int64_t pixels = h * w;
    const std::vector<int64_t> shape =
        chw_ ? std::vector<int64_t>{channels, h, w} : std::vector<int64_t>{h, w, channels};
    if (uint8_out_) {
      if (src.dtype() != DType::kUInt8) {
        FailElement(
            ctx, "normalize", in,
            fmt::format("\"dtype\": \"uint8\" needs a uint8 image, got {}", src.Describe()));
      }
      if (chw_) {
        Tensor dst = Tensor::Allocate(DType::kUInt8, shape);
        const uint8_t* s = src.data<uint8_t>();
        uint8_t* o = dst.data<uint8_t>();
        for (int64_t c = 0; c < channels; ++c) {
          for (int64_t i = 0; i < pixels; ++i) o[c * pixels + i] = s[i * channels + c];
        }
        in.tensors.front() = std::move(dst);
      }  // HWC uint8 is the input itself: pass the buffer through
      out.push_back(std::move(in));
      return;
    }
    Tensor dst = Tensor::Allocate(DType::kFloat32, shape);
    float* o = dst.data<float>();
    if (src.dtype() == DType::kUInt8) {
      const uint8_t* s = src.data<uint8_t>();
      if (chw_ && channels == 3) {
        // One pass over the pixels, writing the three planes.
        const float *l0 = &lut_[0], *l1 = &lut_[256], *l2 = &lut_[512];
        float *p0 = o, *p1 = o + pixels, *p2 = o + 2 * pixels;
        for (int64_t i = 0; i < pixels; ++i, s += 3) {
          p0[i] = l0[s[0]];
          p1[i] = l1[s[1]];
          p2[i] = l2[s[2]];
        }
      } else if (chw_) {
        for (int64_t c = 0; c < channels; ++c) {
          const float* lut = &lut_[static_cast<size_t>(c) * 256];
          float* plane = o + c * pixels;
          for (int64_t i = 0; i < pixels; ++i) plane[i] = lut[s[i * channels + c]];
        }
      } else if (channels == 3) {
        const float *l0 = &lut_[0], *l1 = &lut_[256], *l2 = &lut_[512];
        for (int64_t i = 0; i < pixels * 3; i += 3) {
          o[i] = l0[s[i]];
          o[i + 1] = l1[s[i + 1]];
          o[i + 2] = l2[s[i + 2]];
        }
      } else {
        for (int64_t i = 0; i < pixels; ++i) {
          for (int64_t c = 0; c < channels; ++c) {
            o[i * channels + c] = lut_[static_cast<size_t>(c) * 256 + s[i * channels + c]];
          }
        }
      }
    } else {
      const float* s = src.data<float>();
      for (int64_t c = 0; c < channels; ++c) {
        const float mul = mul_[c], add = add_[c];
        const int64_t stride = chw_ ? 1 : channels;
        float* dc = chw_ ? o + c * pixels : o + c;
        for (int64_t i = 0; i < pixels; ++i) dc[i * stride] = s[i * channels + c] * mul + add;
      }
    }
    in.tensors.front() = std::move(dst);
    out.push_back(std::move(in));
  }

 private:
  std::vector<double> mean_, std_;
  double scale_ = 1.0 / 255.0;
  bool chw_ = false;
  bool uint8_out_ = false;
  std::vector<float> lut_;        // [channel][value] for uint8 input
  std::vector<float> mul_, add_;  // per channel, for float32 input: x * mul + add
};

SLUICE_REGISTER_OP("normalize", NormalizeOp);

}  // namespace
}  // namespace sluice::pipeline
