// Helpers shared by the built-in image ops: argument parsing, the image tensor check, the
// per-element random stream, torchvision's crop window and the resampler.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sluice/pipeline/element.h"
#include "sluice/pipeline/export.h"
#include "sluice/pipeline/op.h"

namespace sluice::pipeline::image {

// Names the element in error messages: its file when known, else its id.
std::string Where(const Element& e);

// Throws "stage 'S': OP: WHERE: WHAT". Out of line so that the hot paths stay small.
[[noreturn]] void FailElement(const OpContext& ctx, std::string_view op, const Element& e,
                              std::string_view what);

// The image of an element: its first tensor, which must be [H, W, C] with a dtype in `dtypes`
// and dimensions that fit the resampler's int parameters. Further tensors (a label) ride along.
const Tensor& ImageOf(const Element& e, const OpContext& ctx, std::string_view op,
                      std::initializer_list<DType> dtypes);

// An output size [h, w] from `size` (an int for a square, or [h, w]), each in [1, 65536].
std::pair<int64_t, int64_t> SizeArg(OpArgs& args);

// A [min, max] range argument with lo_limit < min <= max <= hi_limit (`lo_open`: min must be
// strictly above lo_limit).
std::pair<double, double> RangeArg(OpArgs& args, std::string_view key, std::vector<double> fallback,
                                   double lo_limit, bool lo_open, double hi_limit);

// splitmix64 (Steele, Lea and Flood, "Fast splittable pseudorandom number generators", 2014):
// tiny state, so a fresh generator per element costs nothing, and ample quality for a handful
// of augmentation draws. Written out rather than <random> so that the draws are the same with
// every standard library.
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  // Uniform in [0, 1), from the top 53 bits.
  double Uniform() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }
  double Uniform(double lo, double hi) { return lo + (hi - lo) * Uniform(); }
  // Uniform integer in [0, n] (n >= 0 and far below 2^53, as image sides are).
  int64_t UpTo(int64_t n) {
    return std::min(n, static_cast<int64_t>(Uniform() * static_cast<double>(n + 1)));
  }

 private:
  uint64_t state_;
};

// The random stream of one element: reproducible for a given seed, epoch and element id.
inline SplitMix64 ElementRng(uint64_t seed, const OpContext& ctx, const Element& e) {
  return SplitMix64(MixSeed(MixSeed(seed, static_cast<uint64_t>(ctx.epoch)), e.id));
}

// Per-op salts mixed into the user's seed, so that stages given the same seed (a global one)
// do not make correlated draws (e.g. flipping exactly the elements that got small crops). The
// fused decode-and-crop op uses the crop salt, so it draws the windows random_resized_crop does.
inline constexpr uint64_t kCropSalt = 0x63726f70;  // "crop"
inline constexpr uint64_t kFlipSalt = 0x666c6970;  // "flip"

// A crop window in pixels of the full image.
struct Crop {
  int64_t top = 0, left = 0, h = 0, w = 0;
};

// torchvision's RandomResizedCrop parameters: area fraction uniform in `scale`, aspect ratio
// log-uniform in `ratio`, and the window drawing of its get_params. Exported from the shared
// library (though no public header declares it) for decode_crop_test's distribution checks.
class SLUICE_PIPELINE_EXPORT CropSampler {
 public:
  // Reads args.size, args.scale, args.ratio and args.seed.
  explicit CropSampler(OpArgs& args);
  // torchvision.transforms.RandomResizedCrop.get_params: ten tries, then a centre crop with
  // the aspect ratio clamped into `ratio`.
  Crop Draw(SplitMix64& rng, int64_t img_h, int64_t img_w) const;
  int64_t height() const { return height_; }
  int64_t width() const { return width_; }
  uint64_t seed() const { return seed_; }

 private:
  int64_t height_ = 0, width_ = 0;
  double scale_min_ = 0, scale_max_ = 0;
  double ratio_min_ = 0, ratio_max_ = 0;
  double log_ratio_min_ = 0, log_ratio_max_ = 0;
  uint64_t seed_ = 0;
};

// Resizes the h x w region at (top, left) of `src` [H, W, C] into a new [out_h, out_w, C] tensor
// of the same dtype (uint8 or float32). The region is read in place through the source's row
// stride, so a crop costs no copy. Exported (no public header declares it) for decode_crop_test's
// reference decode and bench/resize_bench.
SLUICE_PIPELINE_EXPORT Tensor ResizeRegion(const Tensor& src, int64_t top, int64_t left, int64_t h,
                                           int64_t w, int64_t out_h, int64_t out_w,
                                           const OpContext& ctx, std::string_view op,
                                           const Element& e);

// Converts `pixels` CMYK pixels as libjpeg decodes Adobe CMYK/YCCK JPEGs (inverted ink values,
// 255 = no ink) to RGB: R = C * K / 255 and so on.
void CmykToRgb(const uint8_t* cmyk, uint8_t* rgb, int64_t pixels);

}  // namespace sluice::pipeline::image
