// Resampler benchmark: times random-resized crops of real photos with each resize library found
// and scores each against a float area-average / bilinear reference (PSNR). Prints a Markdown
// table.
//
//   build/bin/resize_bench /work/data/photos [--images 64] [--crops 4] [--runs 7] [--size 224]
#include <turbojpeg.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <stb_image_resize.h>  // implementation lives in libstb (Debian's libstb-dev)
#include <CLI/CLI.hpp>

#include "sluice/common/clock.h"

#if SLUICE_BENCH_HAVE_OPENCV
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>
#endif
#if SLUICE_BENCH_HAVE_LIBYUV
#include <libyuv/convert_argb.h>
#include <libyuv/convert_from_argb.h>
#include <libyuv/scale_argb.h>
#include <libyuv/scale_rgb.h>
#endif
#if SLUICE_BENCH_HAVE_SWSCALE
extern "C" {
#include <libswscale/swscale.h>
}
#endif

#include "pipeline/ops/image_common.h"

namespace {

// A decoded photo in the layouts the methods read: packed RGB, ARGB (libyuv's byte order
// B, G, R, A in memory, which keeps our R, G, B in bytes 0..2) and float32 RGB in [0, 255].
struct Image {
  int w = 0, h = 0;
  std::vector<uint8_t> rgb;
  std::vector<uint8_t> argb;
  std::vector<float> rgbf;
};

struct Crop {
  int image = 0, top = 0, left = 0, h = 0, w = 0;
};

// What a method writes: 3-channel uint8, 4-channel uint8 (ARGB) or 3-channel float32.
enum class Out { kRgb8, kArgb8, kRgbF32 };

// One resampler under test: it resizes crop `c` of `img` to size x size into `dst`.
struct Method {
  std::string name;
  Out out = Out::kRgb8;
  std::function<void(const Image& img, const Crop& c, int size, void* dst)> run;
};

// Decodes every JPEG under `dir` (recursively, in path order, every k-th so that at most
// `max_images` are kept) to RGB; files TurboJPEG cannot read are skipped.
std::vector<Image> LoadImages(const std::string& dir, int max_images) {
  std::vector<std::filesystem::path> paths;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir)) {
    std::string ext = entry.path().extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(), ::tolower);
    if (entry.is_regular_file() && (ext == ".jpg" || ext == ".jpeg")) paths.push_back(entry.path());
  }
  std::sort(paths.begin(), paths.end());
  const size_t step = std::max<size_t>(1, paths.size() / std::max(1, max_images));
  tjhandle tj = tjInitDecompress();
  std::vector<Image> images;
  for (size_t i = 0; i < paths.size() && images.size() < static_cast<size_t>(max_images);
       i += step) {
    std::ifstream in(paths[i], std::ios::binary);
    std::vector<unsigned char> jpeg((std::istreambuf_iterator<char>(in)), {});
    Image img;
    int subsamp = 0, colorspace = 0;
    if (tjDecompressHeader3(tj, jpeg.data(), jpeg.size(), &img.w, &img.h, &subsamp, &colorspace) ||
        colorspace == TJCS_CMYK || colorspace == TJCS_YCCK) {
      continue;
    }
    img.rgb.resize(static_cast<size_t>(img.w) * img.h * 3);
    if (tjDecompress2(tj, jpeg.data(), jpeg.size(), img.rgb.data(), img.w, 0, img.h, TJPF_RGB, 0) !=
        0) {
      continue;
    }
    img.rgbf.assign(img.rgb.begin(), img.rgb.end());
    img.argb.resize(static_cast<size_t>(img.w) * img.h * 4);
    for (size_t p = 0; p < static_cast<size_t>(img.w) * img.h; ++p) {
      std::copy_n(&img.rgb[p * 3], 3, &img.argb[p * 4]);
      img.argb[p * 4 + 3] = 255;
    }
    images.push_back(std::move(img));
  }
  tjDestroy(tj);
  return images;
}

// torchvision's RandomResizedCrop.get_params with scale [0.08, 1] and ratio [3/4, 4/3]: ten
// tries, then the whole image with the ratio clamped, centred.
Crop DrawCrop(std::mt19937_64& rng, int image, int img_h, int img_w) {
  std::uniform_real_distribution<double> area_frac(0.08, 1.0);
  std::uniform_real_distribution<double> log_ratio(std::log(3.0 / 4.0), std::log(4.0 / 3.0));
  const double area = static_cast<double>(img_h) * img_w;
  for (int attempt = 0; attempt < 10; ++attempt) {
    const double target = area * area_frac(rng);
    const double aspect = std::exp(log_ratio(rng));
    const int w = static_cast<int>(std::lround(std::sqrt(target * aspect)));
    const int h = static_cast<int>(std::lround(std::sqrt(target / aspect)));
    if (w > 0 && w <= img_w && h > 0 && h <= img_h) {
      const int top = std::uniform_int_distribution<int>(0, img_h - h)(rng);
      const int left = std::uniform_int_distribution<int>(0, img_w - w)(rng);
      return {image, top, left, h, w};
    }
  }
  int w = img_w, h = img_h;
  const double in_ratio = static_cast<double>(img_w) / img_h;
  if (in_ratio < 3.0 / 4.0) h = static_cast<int>(std::lround(w / (3.0 / 4.0)));
  if (in_ratio > 4.0 / 3.0) w = static_cast<int>(std::lround(h * (4.0 / 3.0)));
  return {image, (img_h - h) / 2, (img_w - w) / 2, h, w};
}

// The source taps of one output sample along one axis: first index and weights (summing to 1).
struct Taps {
  int first = 0;
  std::vector<double> w;
};

// Exact area average when shrinking (the box [i*s, (i+1)*s) with partial pixels weighted by
// their coverage), bilinear at pixel centres with clamped edges when enlarging.
std::vector<Taps> AxisTaps(int in, int out) {
  std::vector<Taps> taps(out);
  const double s = static_cast<double>(in) / out;
  for (int i = 0; i < out; ++i) {
    Taps& t = taps[i];
    if (out <= in) {
      const double lo = i * s, hi = (i + 1) * s;
      t.first = static_cast<int>(std::floor(lo));
      for (int k = t.first; k < in && k < hi; ++k) {
        t.w.push_back((std::min<double>(k + 1, hi) - std::max<double>(k, lo)) / s);
      }
    } else if (in == 1) {
      t.w = {1.0};
    } else {
      const double x = std::clamp((i + 0.5) * s - 0.5, 0.0, in - 1.0);
      t.first = std::min(static_cast<int>(std::floor(x)), in - 2);
      const double f = x - t.first;
      t.w = {1.0 - f, f};
    }
  }
  return taps;
}

// The reference resize of crop `c` to size x size x 3, in double, separable (rows, then columns).
std::vector<double> Reference(const Image& img, const Crop& c, int size) {
  const std::vector<Taps> tx = AxisTaps(c.w, size), ty = AxisTaps(c.h, size);
  std::vector<double> rows(static_cast<size_t>(c.h) * size * 3, 0.0);
  for (int y = 0; y < c.h; ++y) {
    const uint8_t* src = &img.rgb[(static_cast<size_t>(c.top + y) * img.w + c.left) * 3];
    for (int x = 0; x < size; ++x) {
      for (size_t k = 0; k < tx[x].w.size(); ++k) {
        const uint8_t* p = src + (tx[x].first + k) * 3;
        for (int ch = 0; ch < 3; ++ch) rows[(y * size + x) * 3 + ch] += tx[x].w[k] * p[ch];
      }
    }
  }
  std::vector<double> out(static_cast<size_t>(size) * size * 3, 0.0);
  for (int y = 0; y < size; ++y) {
    for (size_t k = 0; k < ty[y].w.size(); ++k) {
      const double* r = &rows[static_cast<size_t>(ty[y].first + k) * size * 3];
      for (int i = 0; i < size * 3; ++i)
        out[static_cast<size_t>(y) * size * 3 + i] += ty[y].w[k] * r[i];
    }
  }
  return out;
}

// Sum of squared differences between a method's output and the reference, over R, G, B.
double SquaredError(const std::vector<double>& ref, Out out, const void* dst) {
  double sse = 0;
  const size_t pixels = ref.size() / 3;
  for (size_t p = 0; p < pixels; ++p) {
    for (size_t ch = 0; ch < 3; ++ch) {
      double v = 0;
      if (out == Out::kRgb8) v = static_cast<const uint8_t*>(dst)[p * 3 + ch];
      if (out == Out::kArgb8) v = static_cast<const uint8_t*>(dst)[p * 4 + ch];
      if (out == Out::kRgbF32) v = static_cast<const float*>(dst)[p * 3 + ch];
      const double d = v - ref[p * 3 + ch];
      sse += d * d;
    }
  }
  return sse;
}

const uint8_t* RgbAt(const Image& img, const Crop& c) {
  return &img.rgb[(static_cast<size_t>(c.top) * img.w + c.left) * 3];
}

void AddStb(std::vector<Method>& m) {
  m.push_back({"stb stbir_resize_uint8 (Mitchell; current)", Out::kRgb8,
               [](const Image& img, const Crop& c, int size, void* dst) {
                 stbir_resize_uint8(RgbAt(img, c), c.w, c.h, img.w * 3, static_cast<uint8_t*>(dst),
                                    size, size, size * 3, 3);
               }});
  m.push_back({"stb stbir_resize_float (float32)", Out::kRgbF32,
               [](const Image& img, const Crop& c, int size, void* dst) {
                 const float* src = &img.rgbf[(static_cast<size_t>(c.top) * img.w + c.left) * 3];
                 stbir_resize_float(src, c.w, c.h, img.w * 3 * 4, static_cast<float*>(dst), size,
                                    size, size * 3 * 4, 3);
               }});
}

#if SLUICE_BENCH_HAVE_OPENCV
// How the OpenCV methods pick cv::resize's mode: INTER_AREA when both sides shrink, else
// INTER_LINEAR (kWhole); or per side, with two passes (INTER_AREA along the shrinking side, then
// INTER_LINEAR along the growing one) when a crop shrinks one way and grows the other (kPerSide,
// what image::ResizeRegion does); or one mode for every crop.
enum class CvPolicy { kWhole, kPerSide, kLinear, kLinearExact, kSteps, kStepsBlur };

// kSteps: a shrink by an integer factor per side with INTER_AREA (OpenCV's vectorized fast path,
// after trimming the few columns or rows that do not divide), then INTER_LINEAR for the rest
// (under 2x); kStepsBlur also smooths with a 3-tap binomial filter before a remaining shrink of
// more than 1.25x, which INTER_LINEAR alone would alias.
void SteppedShrink(const cv::Mat& in, cv::Mat& out, bool blur) {
  const int kx = std::max(1, in.cols / out.cols), ky = std::max(1, in.rows / out.rows);
  cv::Mat src = in;
  thread_local cv::Mat mid, smooth;
  if (kx > 1 || ky > 1) {
    const int w = in.cols / kx * kx, h = in.rows / ky * ky;
    const cv::Mat trimmed = in(cv::Rect((in.cols - w) / 2, (in.rows - h) / 2, w, h));
    cv::resize(trimmed, mid, cv::Size(w / kx, h / ky), 0, 0, cv::INTER_AREA);
    src = mid;
  }
  if (src.size() == out.size()) {
    src.copyTo(out);
    return;
  }
  if (blur && (src.cols > 1.25 * out.cols || src.rows > 1.25 * out.rows)) {
    cv::GaussianBlur(src, smooth, cv::Size(3, 3), 0, 0, cv::BORDER_REPLICATE);
    src = smooth;
  }
  cv::resize(src, out, out.size(), 0, 0, cv::INTER_LINEAR);
}

// cv::resize of the crop, read in place through the photo's row stride.
void OpenCvResize(const Image& img, const Crop& c, int size, void* dst, bool is_float,
                  CvPolicy policy) {
  const int type = is_float ? CV_32FC3 : CV_8UC3;
  const size_t offset = (static_cast<size_t>(c.top) * img.w + c.left) * 3;
  void* src = is_float ? static_cast<void*>(const_cast<float*>(&img.rgbf[offset]))
                       : static_cast<void*>(const_cast<uint8_t*>(&img.rgb[offset]));
  const cv::Mat in(c.h, c.w, type, src, static_cast<size_t>(img.w) * 3 * (is_float ? 4 : 1));
  cv::Mat out(size, size, type, dst);
  const bool shrinks = size < c.w || size<c.h, grows = size> c.w || size > c.h;
  if (policy == CvPolicy::kPerSide && shrinks && grows) {
    thread_local cv::Mat mid;
    cv::resize(in, mid, cv::Size(std::min(c.w, size), std::min(c.h, size)), 0, 0, cv::INTER_AREA);
    cv::resize(mid, out, out.size(), 0, 0, cv::INTER_LINEAR);
    return;
  }
  if ((policy == CvPolicy::kSteps || policy == CvPolicy::kStepsBlur) && !grows) {
    SteppedShrink(in, out, policy == CvPolicy::kStepsBlur);
    return;
  }
  int interp = grows ? cv::INTER_LINEAR : cv::INTER_AREA;
  if (policy == CvPolicy::kLinear) interp = cv::INTER_LINEAR;
  if (policy == CvPolicy::kLinearExact) interp = cv::INTER_LINEAR_EXACT;
  cv::resize(in, out, out.size(), 0, 0, interp);
}

void AddOpenCv(std::vector<Method>& m) {
  cv::setNumThreads(1);
  struct Variant {
    const char* name;
    bool is_float;
    CvPolicy policy;
  };
  const Variant variants[] = {
      {"opencv cv::resize (AREA if both sides shrink, else LINEAR)", false, CvPolicy::kWhole},
      {"opencv cv::resize per side (AREA / LINEAR, 2 passes if mixed; chosen)", false,
       CvPolicy::kPerSide},
      {"opencv cv::resize INTER_LINEAR always", false, CvPolicy::kLinear},
      {"opencv cv::resize INTER_LINEAR_EXACT always", false, CvPolicy::kLinearExact},
      {"opencv cv::resize float32 per side (chosen)", true, CvPolicy::kPerSide},
      {"opencv integer-factor AREA + LINEAR", false, CvPolicy::kSteps},
      {"opencv integer-factor AREA + 3-tap blur + LINEAR", false, CvPolicy::kStepsBlur}};
  // The runtime's own resampler, as random_resized_crop calls it.
  m.push_back({"sluice image::ResizeRegion (chosen)", Out::kRgb8,
               [](const Image& img, const Crop& c, int size, void* dst) {
                 const sluice::pipeline::Tensor t = sluice::pipeline::Tensor::Wrap(
                     sluice::pipeline::DType::kUInt8, {img.h, img.w, 3},
                     // A view of the photo's pixels (the aliasing constructor owns nothing).
                     std::shared_ptr<uint8_t[]>(std::shared_ptr<uint8_t[]>(),
                                                const_cast<uint8_t*>(img.rgb.data())));
                 static const sluice::pipeline::Element e;
                 const sluice::pipeline::OpContext ctx{0, 0, "bench"};
                 sluice::pipeline::Tensor out = sluice::pipeline::image::ResizeRegion(
                     t, c.top, c.left, c.h, c.w, size, size, ctx, "bench", e);
                 std::memcpy(dst, out.data<uint8_t>(), out.byte_size());
               }});
  for (const Variant& v : variants) {
    m.push_back({v.name, v.is_float ? Out::kRgbF32 : Out::kRgb8,
                 [v](const Image& img, const Crop& c, int size, void* dst) {
                   OpenCvResize(img, c, size, dst, v.is_float, v.policy);
                 }});
  }
}
#endif

#if SLUICE_BENCH_HAVE_LIBYUV
void AddLibyuv(std::vector<Method>& m) {
  m.push_back({"libyuv RGBScale (kFilterBox)", Out::kRgb8,
               [](const Image& img, const Crop& c, int size, void* dst) {
                 libyuv::RGBScale(RgbAt(img, c), img.w * 3, c.w, c.h, static_cast<uint8_t*>(dst),
                                  size * 3, size, size, libyuv::kFilterBox);
               }});
  m.push_back({"libyuv RGBScale (kFilterBilinear)", Out::kRgb8,
               [](const Image& img, const Crop& c, int size, void* dst) {
                 libyuv::RGBScale(RgbAt(img, c), img.w * 3, c.w, c.h, static_cast<uint8_t*>(dst),
                                  size * 3, size, size, libyuv::kFilterBilinear);
               }});
  m.push_back({"libyuv RGB24ToARGB + ARGBScale (box) + ARGBToRGB24", Out::kRgb8,
               [](const Image& img, const Crop& c, int size, void* dst) {
                 thread_local std::vector<uint8_t> in_argb, out_argb;
                 in_argb.resize(static_cast<size_t>(c.w) * c.h * 4);
                 out_argb.resize(static_cast<size_t>(size) * size * 4);
                 libyuv::RGB24ToARGB(RgbAt(img, c), img.w * 3, in_argb.data(), c.w * 4, c.w, c.h);
                 libyuv::ARGBScale(in_argb.data(), c.w * 4, c.w, c.h, out_argb.data(), size * 4,
                                   size, size, libyuv::kFilterBox);
                 libyuv::ARGBToRGB24(out_argb.data(), size * 4, static_cast<uint8_t*>(dst),
                                     size * 3, size, size);
               }});
  const libyuv::FilterMode modes[] = {libyuv::kFilterBox, libyuv::kFilterBilinear};
  const char* names[] = {"libyuv ARGBScale only, 4-channel in/out (kFilterBox)",
                         "libyuv ARGBScale only, 4-channel in/out (kFilterBilinear)"};
  for (int i = 0; i < 2; ++i) {
    m.push_back({names[i], Out::kArgb8,
                 [mode = modes[i]](const Image& img, const Crop& c, int size, void* dst) {
                   const uint8_t* src =
                       &img.argb[(static_cast<size_t>(c.top) * img.w + c.left) * 4];
                   libyuv::ARGBScale(src, img.w * 4, c.w, c.h, static_cast<uint8_t*>(dst), size * 4,
                                     size, size, mode);
                 }});
  }
}
#endif

#if SLUICE_BENCH_HAVE_SWSCALE
// One cached swscale context per method, re-made by sws_getCachedContext only when
// the crop size changes (which, for random crops, is nearly every call).
void SwsResize(const Image& img, const Crop& c, int size, void* dst, int flags, SwsContext*& ctx) {
  ctx = sws_getCachedContext(ctx, c.w, c.h, AV_PIX_FMT_RGB24, size, size, AV_PIX_FMT_RGB24, flags,
                             nullptr, nullptr, nullptr);
  const uint8_t* src[1] = {RgbAt(img, c)};
  const int src_stride[1] = {img.w * 3};
  uint8_t* out[1] = {static_cast<uint8_t*>(dst)};
  const int out_stride[1] = {size * 3};
  sws_scale(ctx, src, src_stride, 0, c.h, out, out_stride);
}

void AddSwscale(std::vector<Method>& m) {
  constexpr int kFull = SWS_FULL_CHR_H_INT | SWS_FULL_CHR_H_INP | SWS_ACCURATE_RND;
  const std::pair<const char*, int> variants[] = {
      {"swscale SWS_AREA", SWS_AREA},
      {"swscale SWS_AREA + full chroma + accurate rnd", SWS_AREA | kFull},
      {"swscale SWS_BILINEAR + full chroma + accurate rnd", SWS_BILINEAR | kFull}};
  for (const auto& [name, flags] : variants) {
    std::shared_ptr<SwsContext*> ctx(new SwsContext*(nullptr), [](SwsContext** p) {
      sws_freeContext(*p);
      delete p;
    });
    m.push_back(
        {name, Out::kRgb8, [flags, ctx](const Image& img, const Crop& c, int size, void* dst) {
           SwsResize(img, c, size, dst, flags, *ctx);
         }});
  }
}
#endif

std::vector<Method> Methods() {
  std::vector<Method> m;
  AddStb(m);
#if SLUICE_BENCH_HAVE_OPENCV
  AddOpenCv(m);
#endif
#if SLUICE_BENCH_HAVE_LIBYUV
  AddLibyuv(m);
#endif
#if SLUICE_BENCH_HAVE_SWSCALE
  AddSwscale(m);
#endif
  return m;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// Crops by what the resize does to them: both sides shrink (or keep), both grow, or mixed.
enum Regime { kAll = 0, kShrink, kGrow, kMixed, kRegimes };

Regime RegimeOf(const Crop& c, int size) {
  if (c.w >= size && c.h >= size) return kShrink;
  if (c.w < size && c.h < size) return kGrow;
  return kMixed;
}

// PSNR in dB of each method against the reference, over all crops and per regime (NaN where a
// regime has no crops).
std::vector<std::array<double, kRegimes>> Quality(const std::vector<Method>& methods,
                                                  const std::vector<Image>& images,
                                                  const std::vector<Crop>& crops, int size) {
  std::vector<std::array<double, kRegimes>> sse(methods.size());
  std::array<double, kRegimes> count{};
  std::vector<float> dst(static_cast<size_t>(size) * size * 4);
  for (const Crop& c : crops) {
    const std::vector<double> ref = Reference(images[c.image], c, size);
    const Regime regime = RegimeOf(c, size);
    count[kAll] += 1;
    count[regime] += 1;
    for (size_t i = 0; i < methods.size(); ++i) {
      methods[i].run(images[c.image], c, size, dst.data());
      const double e = SquaredError(ref, methods[i].out, dst.data());
      sse[i][kAll] += e;
      sse[i][regime] += e;
    }
  }
  std::vector<std::array<double, kRegimes>> psnr(methods.size());
  const double per_crop = static_cast<double>(size) * size * 3;
  for (size_t i = 0; i < methods.size(); ++i) {
    for (int r = 0; r < kRegimes; ++r) {
      const double mse = sse[i][r] / (count[r] * per_crop);
      psnr[i][r] = count[r] > 0 ? 10.0 * std::log10(255.0 * 255.0 / mse) : std::nan("");
    }
  }
  return psnr;
}

// Milliseconds per crop of each method in each run, on this thread's CPU clock (so that time
// spent descheduled on a shared machine does not count); methods take turns within a run so
// that a noisy spell spreads over all of them.
std::vector<std::vector<double>> Time(const std::vector<Method>& methods,
                                      const std::vector<Image>& images,
                                      const std::vector<Crop>& crops, int size, int runs) {
  std::vector<std::vector<double>> ms(methods.size());
  std::vector<float> dst(static_cast<size_t>(size) * size * 4);
  for (int r = 0; r < runs; ++r) {
    for (size_t i = 0; i < methods.size(); ++i) {
      const int64_t start = sluice::ThreadCpuNanos();
      for (const Crop& c : crops) methods[i].run(images[c.image], c, size, dst.data());
      const double took_ms = static_cast<double>(sluice::ThreadCpuNanos() - start) * 1e-6;
      ms[i].push_back(took_ms / static_cast<double>(crops.size()));
    }
  }
  return ms;
}

void PrintTable(const std::vector<Method>& methods, const std::vector<std::vector<double>>& ms,
                const std::vector<std::array<double, kRegimes>>& psnr) {
  const double base = Median(ms.front());
  fmt::print(
      "| method | CPU ms/crop median | min | max | vs stb | PSNR all | shrink | grow | mixed |\n");
  fmt::print("|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  for (size_t i = 0; i < methods.size(); ++i) {
    const double med = Median(ms[i]);
    fmt::print("| {} | {:.3f} | {:.3f} | {:.3f} | {:.1f}x | {:.2f} | {:.2f} | {:.2f} | {:.2f} |\n",
               methods[i].name, med, *std::min_element(ms[i].begin(), ms[i].end()),
               *std::max_element(ms[i].begin(), ms[i].end()), base / med, psnr[i][kAll],
               psnr[i][kShrink], psnr[i][kGrow], psnr[i][kMixed]);
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Times and scores image resamplers on random-resized crops of real photos."};
  std::string dir;
  int max_images = 64, crops_per_image = 4, runs = 7, size = 224;
  uint64_t seed = 1;
  app.add_option("photos", dir, "directory searched recursively for .jpg files")
      ->required()
      ->check(CLI::ExistingDirectory);
  app.add_option("--images", max_images, "photos to use (spread over the directory)")
      ->check(CLI::PositiveNumber);
  app.add_option("--crops", crops_per_image, "random crops per photo")->check(CLI::PositiveNumber);
  app.add_option("--runs", runs, "timed runs over all crops")->check(CLI::PositiveNumber);
  app.add_option("--size", size, "output side (square)")->check(CLI::Range(1, 4096));
  app.add_option("--seed", seed, "crop seed");
  CLI11_PARSE(app, argc, argv);

  const std::vector<Image> images = LoadImages(dir, max_images);
  if (images.empty()) {
    fmt::print(stderr, "resize_bench: no decodable JPEG under {}\n", dir);
    return 1;
  }
  std::mt19937_64 rng(seed);
  std::vector<Crop> crops;
  double pixels = 0;
  for (int i = 0; i < static_cast<int>(images.size()); ++i) {
    pixels += static_cast<double>(images[i].w) * images[i].h;
    for (int k = 0; k < crops_per_image; ++k)
      crops.push_back(DrawCrop(rng, i, images[i].h, images[i].w));
  }
  const std::vector<Method> methods = Methods();
  std::array<int, kRegimes> regimes{};
  for (const Crop& c : crops) ++regimes[RegimeOf(c, size)];
  fmt::print(
      "{} photos from {} (mean {:.0f} pixels), {} crops to {}x{} ({} shrink, {} grow, {} "
      "mixed), {} runs\n\n",
      images.size(), dir, pixels / images.size(), crops.size(), size, size, regimes[kShrink],
      regimes[kGrow], regimes[kMixed], runs);
  const auto psnr = Quality(methods, images, crops, size);
  Time(methods, images, crops, size, 1);  // warm-up: caches, lazily built tables
  PrintTable(methods, Time(methods, images, crops, size, runs), psnr);
  return 0;
}
