// Helpers shared by the built-in image ops (see image_common.h).
#include "pipeline/ops/image_common.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstring>

#include <fmt/format.h>
#include <stb_image_resize.h>  // implementation lives in libstb (Debian's libstb-dev)
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "sluice/common/error.h"

namespace sluice::pipeline::image {

// Names the element in error messages: its file when known, else its id.
std::string Where(const Element& e) {
  return e.path.empty() ? fmt::format("element {}", e.id) : fmt::format("'{}'", e.path);
}

// Throws "stage 'S': OP: WHERE: WHAT". Out of line so that the hot paths stay small.
[[noreturn]] void FailElement(const OpContext& ctx, std::string_view op, const Element& e,
                              std::string_view what) {
  Fail("stage '{}': {}: {}: {}", ctx.stage, op, Where(e), what);
}

namespace {
std::string DTypeList(std::initializer_list<DType> dtypes) {
  std::string s;
  for (DType d : dtypes) {
    if (!s.empty()) s += " or ";
    s += DTypeName(d);
  }
  return s;
}
}  // namespace

// The image of an element: its first tensor, which must be [H, W, C] with a dtype in `dtypes`
// and dimensions that the resamplers' int rows, columns and row strides can hold. Further
// tensors (a label) ride along untouched.
const Tensor& ImageOf(const Element& e, const OpContext& ctx, std::string_view op,
                      std::initializer_list<DType> dtypes) {
  if (e.tensors.empty()) {
    FailElement(
        ctx, op, e,
        fmt::format("expected a {} image tensor [H, W, C], got an element with no "
                    "tensors{}",
                    DTypeList(dtypes), e.bytes ? " (undecoded bytes: decode it first)" : ""));
  }
  const Tensor& t = e.tensors.front();
  bool dtype_ok = std::find(dtypes.begin(), dtypes.end(), t.dtype()) != dtypes.end();
  if (!dtype_ok || t.rank() != 3) {
    FailElement(ctx, op, e,
                fmt::format("expected a {} image tensor [H, W, C], got {}", DTypeList(dtypes),
                            t.Describe()));
  }
  if (t.dim(0) <= 0 || t.dim(1) <= 0 || t.dim(2) <= 0) {
    FailElement(ctx, op, e, fmt::format("image {} is empty", t.Describe()));
  }
  int64_t row_bytes = t.dim(1) * t.dim(2) * static_cast<int64_t>(DTypeSize(t.dtype()));
  if (t.dim(0) > INT_MAX || row_bytes > INT_MAX) {
    FailElement(ctx, op, e, fmt::format("image {} is too large", t.Describe()));
  }
  return t;
}

// An output size [h, w] from `size` (an int for a square, or [h, w]), each > 0.
std::pair<int64_t, int64_t> SizeArg(OpArgs& args) {
  std::vector<int64_t> size = args.Ints("size");
  if (size.size() != 1 && size.size() != 2) {
    args.Fail("size",
              fmt::format("expected an integer or [height, width], got {} values", size.size()));
  }
  int64_t h = size[0];
  int64_t w = size.back();
  constexpr int64_t kMaxSide = 1 << 16;  // keeps every resampler int (sides, row bytes) in range
  if (h <= 0 || w <= 0 || h > kMaxSide || w > kMaxSide) {
    args.Fail("size", fmt::format("each side must be in [1, {}], got [{}, {}]", kMaxSide, h, w));
  }
  return {h, w};
}

// A [min, max] range argument with lo_limit < min <= max <= hi_limit (`lo_open`: min must be
// strictly above lo_limit).
std::pair<double, double> RangeArg(OpArgs& args, std::string_view key, std::vector<double> fallback,
                                   double lo_limit, bool lo_open, double hi_limit) {
  std::vector<double> r = args.Doubles(key, std::move(fallback));
  if (r.size() != 2) {
    args.Fail(key, fmt::format("expected [min, max], got {} values", r.size()));
  }
  bool lo_ok = lo_open ? r[0] > lo_limit : r[0] >= lo_limit;
  if (!lo_ok || !(r[1] <= hi_limit) || !(r[0] <= r[1])) {
    args.Fail(key, fmt::format("expected {}{}, {}] with min <= max, got [{}, {}]",
                               lo_open ? "(" : "[", lo_limit, hi_limit, r[0], r[1]));
  }
  return {r[0], r[1]};
}

namespace {

// The runtime parallelizes across elements, so OpenCV must not start a thread pool of its own
// inside our workers: one thread for its parallel_for_, set once for the process.
void KeepOpenCvSingleThreaded() {
  static const bool once = [] {
    cv::setNumThreads(1);
    return true;
  }();
  (void)once;
}

// Below this shrink factor on both sides bilinear interpolation (INTER_LINEAR, 2 x 2 taps) reads
// nearly every source pixel, so an exact area average adds little; above it, it would skip
// pixels and alias. On random crops of real photographs to 224 the rule scores 51 dB against an
// exact area average (shrinking crops: 49.6 dB; stb's Mitchell filter: 48.4) at 0.41 ms per crop
// against 0.55-0.8 ms for INTER_AREA throughout (bench/resize_bench.cc, docs/benchmarks.md).
constexpr double kLinearShrinkLimit = 1.5;

// A shrink: bilinear when mild (above), else an exact area average (INTER_AREA, whose
// non-integer path is scalar in Debian's build).
void Shrink(const cv::Mat& in, cv::Mat& out) {
  const double factor =
      std::max(static_cast<double>(in.cols) / out.cols, static_cast<double>(in.rows) / out.rows);
  cv::resize(in, out, out.size(), 0, 0,
             factor < kLinearShrinkLimit ? cv::INTER_LINEAR : cv::INTER_AREA);
}

// cv::resize with the filter each side needs: an area average along a side that shrinks (see
// Shrink), bilinear interpolation at pixel centres (INTER_LINEAR) along one that grows.
// OpenCV applies one mode to both sides (its INTER_AREA point-samples once either side grows),
// so a region that shrinks one way and grows the other takes two passes, one per side.
void Resample(const cv::Mat& in, cv::Mat& out) {
  const bool shrinks = out.cols < in.cols || out.rows < in.rows;
  const bool grows = out.cols > in.cols || out.rows > in.rows;
  if (!grows) {
    Shrink(in, out);
  } else if (!shrinks) {
    cv::resize(in, out, out.size(), 0, 0, cv::INTER_LINEAR);
  } else {
    cv::Mat mid(std::min(in.rows, out.rows), std::min(in.cols, out.cols), in.type());
    Shrink(in, mid);
    cv::resize(mid, out, out.size(), 0, 0, cv::INTER_LINEAR);
  }
}

// stb_image_resize (Mitchell filter when shrinking, Catmull-Rom when enlarging) for images of
// more than 4 channels, which OpenCV's INTER_AREA does not take (cv::resize asserts cn <= 4).
// Its INTER_LINEAR would, but every crop of such an image should get the same filter, whether it
// shrinks or grows. Debian's libstb takes at most 64 channels.
void ResizeWithStb(const Tensor& src, size_t offset, int64_t h, int64_t w, Tensor& out,
                   const OpContext& ctx, std::string_view op, const Element& e) {
  const int64_t channels = src.dim(2);
  if (channels > 64) {  // STBIR_MAX_CHANNELS in Debian's build
    FailElement(ctx, op, e, fmt::format("cannot resize {}: more than 64 channels", src.Describe()));
  }
  const size_t value_size = DTypeSize(src.dtype());
  const int in_stride = static_cast<int>(static_cast<size_t>(src.dim(1) * channels) * value_size);
  const int out_w = static_cast<int>(out.dim(1)), out_h = static_cast<int>(out.dim(0));
  const int out_stride = static_cast<int>(static_cast<size_t>(out_w * channels) * value_size);
  const uint8_t* in = src.data<uint8_t>() + offset;
  const int ok = src.dtype() == DType::kUInt8
                     ? stbir_resize_uint8(in, static_cast<int>(w), static_cast<int>(h), in_stride,
                                          out.data<uint8_t>(), out_w, out_h, out_stride,
                                          static_cast<int>(channels))
                     : stbir_resize_float(reinterpret_cast<const float*>(in), static_cast<int>(w),
                                          static_cast<int>(h), in_stride, out.data<float>(), out_w,
                                          out_h, out_stride, static_cast<int>(channels));
  if (!ok) {
    FailElement(ctx, op, e,
                fmt::format("stb_image_resize failed resizing {} to [{}, {}]", src.Describe(),
                            out_h, out_w));
  }
}

}  // namespace

// Resizes the h x w region at (top, left) of `src` [H, W, C] into a new [out_h, out_w, C] tensor
// of the same dtype, with OpenCV's cv::resize (bench/resize_bench.cc and docs/benchmarks.md,
// "Resize library", say why this library): an exact area average along a side that shrinks,
// bilinear at pixel centres along one that grows. The region is read in place through the
// source's row stride, so a crop costs no copy, and edges clamp at its border. Images of more
// than 4 channels go to stb_image_resize (see ResizeWithStb).
Tensor ResizeRegion(const Tensor& src, int64_t top, int64_t left, int64_t h, int64_t w,
                    int64_t out_h, int64_t out_w, const OpContext& ctx, std::string_view op,
                    const Element& e) {
  const int64_t channels = src.dim(2);
  const size_t value_size = DTypeSize(src.dtype());
  const size_t offset = static_cast<size_t>((top * src.dim(1) + left) * channels) * value_size;
  Tensor out = Tensor::Allocate(src.dtype(), {out_h, out_w, channels});
  if (channels > 4) {
    ResizeWithStb(src, offset, h, w, out, ctx, op, e);
    return out;
  }
  KeepOpenCvSingleThreaded();
  const int type =
      CV_MAKETYPE(src.dtype() == DType::kFloat32 ? CV_32F : CV_8U, static_cast<int>(channels));
  // cv::Mat has no const view; cv::resize only reads its source.
  const cv::Mat in(static_cast<int>(h), static_cast<int>(w), type,
                   const_cast<uint8_t*>(src.data<uint8_t>()) + offset,
                   static_cast<size_t>(src.dim(1) * channels) * value_size);
  cv::Mat dst(static_cast<int>(out_h), static_cast<int>(out_w), type, out.data<uint8_t>());
  try {
    Resample(in, dst);
  } catch (const cv::Exception& ex) {
    FailElement(ctx, op, e,
                fmt::format("OpenCV failed resizing {} to [{}, {}]: {}", src.Describe(), out_h,
                            out_w, ex.what()));
  }
  if (dst.data != out.data<uint8_t>()) {  // cv::resize reallocates only on a size or type change
    FailElement(ctx, op, e, "OpenCV resized into a buffer of its own");
  }
  return out;
}

CropSampler::CropSampler(OpArgs& args) {
  std::tie(height_, width_) = SizeArg(args);
  std::tie(scale_min_, scale_max_) = RangeArg(args, "scale", {0.08, 1.0}, 0.0, true, 1.0);
  std::tie(ratio_min_, ratio_max_) =
      RangeArg(args, "ratio", {3.0 / 4.0, 4.0 / 3.0}, 0.0, true, HUGE_VAL);
  log_ratio_min_ = std::log(ratio_min_);
  log_ratio_max_ = std::log(ratio_max_);
  seed_ = MixSeed(args.Seed("seed"), kCropSalt);
}

Crop CropSampler::Draw(SplitMix64& rng, int64_t img_h, int64_t img_w) const {
  const double area = static_cast<double>(img_h) * static_cast<double>(img_w);
  for (int attempt = 0; attempt < 10; ++attempt) {
    const double target_area = area * rng.Uniform(scale_min_, scale_max_);
    const double aspect = std::exp(rng.Uniform(log_ratio_min_, log_ratio_max_));
    const auto w = static_cast<int64_t>(std::lround(std::sqrt(target_area * aspect)));
    const auto h = static_cast<int64_t>(std::lround(std::sqrt(target_area / aspect)));
    if (w > 0 && w <= img_w && h > 0 && h <= img_h) {
      const int64_t top = rng.UpTo(img_h - h);
      const int64_t left = rng.UpTo(img_w - w);
      return {top, left, h, w};
    }
  }
  const double in_ratio = static_cast<double>(img_w) / static_cast<double>(img_h);
  int64_t w = img_w, h = img_h;
  if (in_ratio < ratio_min_) {
    h = std::clamp<int64_t>(std::lround(static_cast<double>(w) / ratio_min_), 1, img_h);
  } else if (in_ratio > ratio_max_) {
    w = std::clamp<int64_t>(std::lround(static_cast<double>(h) * ratio_max_), 1, img_w);
  }
  return {(img_h - h) / 2, (img_w - w) / 2, h, w};
}

// Adobe CMYK JPEGs store inverted ink values (255 = no ink), so R = C * K / 255 and so on;
// the same conversion libjpeg-turbo's own tools use (a colour-managed one is out of scope).
void CmykToRgb(const uint8_t* cmyk, uint8_t* rgb, int64_t pixels) {
  for (int64_t i = 0; i < pixels; ++i, cmyk += 4, rgb += 3) {
    const unsigned k = cmyk[3];
    rgb[0] = static_cast<uint8_t>((cmyk[0] * k + 127) / 255);
    rgb[1] = static_cast<uint8_t>((cmyk[1] * k + 127) / 255);
    rgb[2] = static_cast<uint8_t>((cmyk[2] * k + 127) / 255);
  }
}

}  // namespace sluice::pipeline::image
