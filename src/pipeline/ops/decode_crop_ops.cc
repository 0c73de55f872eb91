// Fused decode-and-crop ops: decode_random_resized_crop and decode_resize decode only the JPEG
// region they keep (libjpeg's DCT scaling, jpeg_crop_scanline, jpeg_skip_scanlines), then resize.
#include <algorithm>
#include <cmath>
#include <csetjmp>
#include <cstdint>
#include <cstdio>  // jpeglib.h needs FILE and size_t declared first
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include <jpeglib.h>

#include <jerror.h>  // after jpeglib.h, whose types its codes go with

#include <fmt/format.h>

#include "pipeline/ops/image_common.h"
#include "sluice/pipeline/element.h"
#include "sluice/pipeline/op.h"

namespace sluice::pipeline {
namespace {

using namespace image;  // NOLINT(google-build-using-namespace): the ops' own helpers

// ---------------------------------------------------------------------------------------------
// The libjpeg reader

// libjpeg's error handler must not return from error_exit. It is C, so a C++ exception must not
// cross its frames: error_exit longjmps back to the setjmp in the reader function that called
// libjpeg, which returns false, and the op then throws. Those functions hold no object with a
// destructor, so the jump skips nothing. Messages are kept, never printed (library code).
struct ErrorManager {
  jpeg_error_mgr pub;  // first: libjpeg hands cinfo->err back to the callbacks
  std::jmp_buf jump;
  bool stop_on_eof = false;  // longjmp at the premature-end warning instead of decoding grey
  bool eof = false;          // the data ended early (JWRN_JPEG_EOF)
  char message[JMSG_LENGTH_MAX] = {};
  char eof_message[JMSG_LENGTH_MAX] = {};
};

ErrorManager& ErrorsOf(j_common_ptr cinfo) { return *reinterpret_cast<ErrorManager*>(cinfo->err); }

[[noreturn]] void ErrorExit(j_common_ptr cinfo) {
  ErrorManager& err = ErrorsOf(cinfo);
  (*cinfo->err->format_message)(cinfo, err.message);
  std::longjmp(err.jump, 1);
}

// Warnings (msg_level -1) are counted; a truncated file's JWRN_JPEG_EOF is remembered, and
// stops the decode when the op does not allow truncated files. Trace messages are dropped.
void EmitMessage(j_common_ptr cinfo, int msg_level) {
  if (msg_level >= 0) return;
  ErrorManager& err = ErrorsOf(cinfo);
  ++cinfo->err->num_warnings;
  if (cinfo->err->msg_code != JWRN_JPEG_EOF || err.eof) return;
  err.eof = true;
  (*cinfo->err->format_message)(cinfo, err.eof_message);
  if (err.stop_on_eof) std::longjmp(err.jump, 2);
}

void OutputMessage(j_common_ptr) {}

// The JPEG header facts the ops choose their window from.
struct Header {
  int64_t height = 0, width = 0;
  bool cmyk = false;  // CMYK or YCCK: decoded as CMYK, converted to RGB by CmykToRgb
};

// The window to decode, in pixels of the image scaled by num/8.
struct ScaledWindow {
  int num = 8;
  int64_t top = 0, left = 0, h = 0, w = 0;
};

// Where the decoded window lies in the reader's scratch: `rows` rows of `cols` pixels of
// `channels` bytes; the window's own columns start at `col_offset`.
struct Region {
  uint8_t* pixels = nullptr;
  int64_t rows = 0, cols = 0, channels = 0, col_offset = 0;
};

// One libjpeg decompressor per thread, reused across images, with the scratch the window is
// decoded into. Creating a decompressor costs only ~0.2 us; keeping the scratch per thread
// saves allocating (and faulting in) a window-sized buffer per image.
class JpegReader {
 public:
  static JpegReader& ForThread() {
    thread_local JpegReader reader;
    return reader;
  }
  JpegReader(const JpegReader&) = delete;
  JpegReader& operator=(const JpegReader&) = delete;
  ~JpegReader() { jpeg_destroy_decompress(&cinfo_); }

  // Reads the header of `data`; false with error() on failure.
  bool ReadHeader(const uint8_t* data, size_t size, Header* header);
  // Decodes `win` into scratch; false with error() (and eof()) on failure or early end.
  bool Decode(const ScaledWindow& win, bool cmyk, bool stop_on_eof, Region* region);
  // Returns the decompressor to its idle state, after success or failure alike.
  void Abort() { jpeg_abort_decompress(&cinfo_); }

  // The scratch the last Decode wrote its region into.
  const std::shared_ptr<uint8_t[]>& scratch() const { return scratch_; }
  const char* error() const { return err_.message; }
  bool eof() const { return err_.eof; }
  const char* eof_message() const { return err_.eof_message; }

 private:
  JpegReader() {
    cinfo_.err = jpeg_std_error(&err_.pub);
    err_.pub.error_exit = ErrorExit;
    err_.pub.emit_message = EmitMessage;
    err_.pub.output_message = OutputMessage;
    // jpeg_create_decompress only fails when out of memory; error_exit then needs a target.
    if (setjmp(err_.jump) != 0) std::abort();
    jpeg_create_decompress(&cinfo_);
  }
  uint8_t* Scratch(size_t bytes);

  jpeg_decompress_struct cinfo_{};
  ErrorManager err_;
  std::shared_ptr<uint8_t[]> scratch_;
  size_t scratch_size_ = 0;
  std::vector<JSAMPROW> rows_;
};

// Calls JpegReader::Abort when the op's Process leaves, by return or by throw.
class AbortOnExit {
 public:
  explicit AbortOnExit(JpegReader& r) : r_(r) {}
  ~AbortOnExit() { r_.Abort(); }
  AbortOnExit(const AbortOnExit&) = delete;
  AbortOnExit& operator=(const AbortOnExit&) = delete;

 private:
  JpegReader& r_;
};

bool JpegReader::ReadHeader(const uint8_t* data, size_t size, Header* header) {
  err_.stop_on_eof = false;  // a header cut short fails below with libjpeg's own error
  err_.eof = false;
  err_.pub.num_warnings = 0;
  if (setjmp(err_.jump) != 0) return false;
  jpeg_mem_src(&cinfo_, data, static_cast<unsigned long>(size));
  jpeg_read_header(&cinfo_, TRUE);
  header->height = cinfo_.image_height;
  header->width = cinfo_.image_width;
  header->cmyk = cinfo_.jpeg_color_space == JCS_CMYK || cinfo_.jpeg_color_space == JCS_YCCK;
  return true;
}

// Grows the scratch when needed; a fresh one, too, should anything still hold the old one.
uint8_t* JpegReader::Scratch(size_t bytes) {
  if (bytes > scratch_size_ || scratch_.use_count() > 1) {
    scratch_ = std::make_shared_for_overwrite<uint8_t[]>(bytes);
    scratch_size_ = bytes;
  }
  return scratch_.get();
}

// After jpeg_start_decompress, asks jpeg_crop_scanline for the window's columns plus a margin of
// two pixels each side where the image has them: libjpeg widens the crop left to an iMCU
// boundary, and its fancy chroma upsampling treats the crop's edge columns as image edges, so
// with the margin the window's own pixels are those of a full decode. Then skips to the
// window's first row and reads only its rows.
bool JpegReader::Decode(const ScaledWindow& win, bool cmyk, bool stop_on_eof, Region* region) {
  err_.stop_on_eof = stop_on_eof;
  if (setjmp(err_.jump) != 0) return false;
  cinfo_.scale_num = static_cast<unsigned>(win.num);
  cinfo_.scale_denom = 8;
  cinfo_.out_color_space = cmyk ? JCS_CMYK : JCS_RGB;
  jpeg_start_decompress(&cinfo_);
  constexpr int64_t kMargin = 2;
  const int64_t first = std::max<int64_t>(0, win.left - kMargin);
  const int64_t last = std::min<int64_t>(cinfo_.output_width, win.left + win.w + kMargin);
  auto xoffset = static_cast<JDIMENSION>(first);
  auto width = static_cast<JDIMENSION>(last - first);
  jpeg_crop_scanline(&cinfo_, &xoffset, &width);

  const auto channels = static_cast<int64_t>(cinfo_.output_components);
  const auto row_bytes = static_cast<size_t>(width) * static_cast<size_t>(channels);
  uint8_t* pixels = Scratch(row_bytes * static_cast<size_t>(win.h));
  rows_.resize(static_cast<size_t>(win.h));
  for (size_t r = 0; r < rows_.size(); ++r) rows_[r] = pixels + r * row_bytes;
  if (win.top > 0) jpeg_skip_scanlines(&cinfo_, static_cast<JDIMENSION>(win.top));
  const auto end = static_cast<JDIMENSION>(win.top + win.h);
  while (cinfo_.output_scanline < end) {
    const JDIMENSION done = cinfo_.output_scanline - static_cast<JDIMENSION>(win.top);
    if (jpeg_read_scanlines(&cinfo_, rows_.data() + done, end - cinfo_.output_scanline) == 0) {
      // Only past the image's last row, which the window never reaches; never loop on it.
      std::snprintf(err_.message, sizeof(err_.message), "no rows after row %u of %u",
                    cinfo_.output_scanline, cinfo_.output_height);
      return false;
    }
  }
  *region = {pixels, win.h, static_cast<int64_t>(width), channels,
             win.left - static_cast<int64_t>(xoffset)};
  return true;
}

// ---------------------------------------------------------------------------------------------
// The shared decode path

// The smallest DCT scale num/8 out of 1/8, 2/8, 4/8 and 8/8 at which a window of h x w
// full-size pixels still has at least out_h x out_w pixels, so that the resize only ever shrinks
// where the full image would have. libjpeg-turbo has SIMD inverse DCTs for these four only; the
// others (3/8, 5/8, 6/8, 7/8, and the 12x12 or 14x14 transforms they give 4:2:0 chroma) run as
// plain C and decode ~400-pixel photos more slowly than the full scale does (measured for
// issue 14: 0.62 against 0.49 ms per random crop, 0.85 against 0.60 per centre crop).
int DctScale(double h, double w, int64_t out_h, int64_t out_w) {
  constexpr double kSlack = 1e-9;  // h and w may come from a division
  for (int num : {1, 2, 4}) {
    if (h * num + kSlack >= static_cast<double>(out_h * 8) &&
        w * num + kSlack >= static_cast<double>(out_w * 8)) {
      return num;
    }
  }
  return 8;
}

// One side of a window [pos, pos + len) in full-size pixels, in pixels of the image scaled by
// num/8 (libjpeg's scaled side is ceil(side * num / 8)): both ends rounded, at least one pixel.
std::pair<int64_t, int64_t> ScaleSide(double pos, double len, int num, int64_t side) {
  const int64_t scaled_side = (side * num + 7) / 8;
  const double s = num / 8.0;
  const int64_t lo = std::clamp<int64_t>(std::llround(pos * s), 0, scaled_side - 1);
  const int64_t hi = std::clamp<int64_t>(std::llround((pos + len) * s), lo + 1, scaled_side);
  return {lo, hi - lo};
}

// A window in full-size pixels, fractional where it comes from a resize.
struct Window {
  double top = 0, left = 0, h = 0, w = 0;
};

// The decode path both ops share: JPEG bytes in, the op's window of the image resized to a
// fixed size out. Like decode_jpeg, the element's bytes give way to a uint8 [H, W, 3] RGB
// tensor; unlike it, other tensors (a label) are kept after the image. Each op's Process calls
// it directly (no virtual hook), so that `sluice inspect` follows the whole path.
class WindowDecoder {
 public:
  WindowDecoder(const char* op, int64_t out_h, int64_t out_w, OpArgs& args)
      : op_(op), out_h_(out_h), out_w_(out_w) {
    allow_truncated_ = args.Bool("allow_truncated", false);
  }

  // Reads the header of the element's JPEG bytes into the thread's reader.
  Header ReadHeader(JpegReader& reader, const Element& in, const OpContext& ctx) const;
  // Decodes `win`, resizes it and emits the element with the image in place of its bytes.
  void Emit(JpegReader& reader, const Header& header, const Window& win, Element in,
            std::vector<Element>& out, const OpContext& ctx) const;

 private:
  const char* op_;
  int64_t out_h_, out_w_;
  bool allow_truncated_ = false;
};

Header WindowDecoder::ReadHeader(JpegReader& reader, const Element& in,
                                 const OpContext& ctx) const {
  if (!in.bytes || in.bytes->empty()) {
    FailElement(ctx, op_, in,
                in.tensors.empty()
                    ? "expected JPEG bytes (from read_file), got an element with no bytes"
                    : fmt::format("expected JPEG bytes (from read_file), got no bytes and "
                                  "tensor {} (already decoded?)",
                                  in.tensors.front().Describe()));
  }
  Header header;
  if (!reader.ReadHeader(reinterpret_cast<const uint8_t*>(in.bytes->data()), in.bytes->size(),
                         &header)) {
    FailElement(ctx, op_, in,
                reader.eof()
                    ? fmt::format("not a valid JPEG: {} ({})", reader.error(), reader.eof_message())
                    : fmt::format("not a valid JPEG: {}", reader.error()));
  }
  return header;
}

// Decodes `win` at the DCT scale DctScale picks and resizes it to the output size. A file cut
// short after the window's last row still decodes: nothing the output needs is missing.
void WindowDecoder::Emit(JpegReader& reader, const Header& header, const Window& win, Element in,
                         std::vector<Element>& out, const OpContext& ctx) const {
  ScaledWindow sw;
  sw.num = DctScale(win.h, win.w, out_h_, out_w_);
  std::tie(sw.top, sw.h) = ScaleSide(win.top, win.h, sw.num, header.height);
  std::tie(sw.left, sw.w) = ScaleSide(win.left, win.w, sw.num, header.width);
  Region r;
  if (!reader.Decode(sw, header.cmyk, !allow_truncated_, &r)) {
    if (reader.eof() && !allow_truncated_) {
      FailElement(ctx, op_, in,
                  fmt::format("truncated JPEG ({}); set args.allow_truncated to decode what is "
                              "there",
                              reader.eof_message()));
    }
    FailElement(ctx, op_, in, fmt::format("cannot decode JPEG: {}", reader.error()));
  }
  Tensor src;
  if (header.cmyk) {
    src = Tensor::Allocate(DType::kUInt8, {r.rows, r.cols, 3});
    CmykToRgb(r.pixels, src.data<uint8_t>(), r.rows * r.cols);
  } else {  // the resize reads the thread's scratch in place and returns a new tensor
    src = Tensor::Wrap(DType::kUInt8, {r.rows, r.cols, r.channels}, reader.scratch());
  }
  Tensor image = ResizeRegion(src, 0, r.col_offset, sw.h, sw.w, out_h_, out_w_, ctx, op_, in);
  in.bytes.reset();  // the encoded data is no longer needed downstream
  in.tensors.insert(in.tensors.begin(), std::move(image));
  out.push_back(std::move(in));
}

// ---------------------------------------------------------------------------------------------
// decode_random_resized_crop

// decode_jpeg followed by random_resized_crop, in one step that decodes only the crop window.
// The window is drawn on the full image size from the element's crop stream, so with the same
// seed it is the window random_resized_crop would draw.
class DecodeRandomResizedCropOp : public MapOp {
 public:
  explicit DecodeRandomResizedCropOp(OpArgs& args)
      : sampler_(args),
        decoder_("decode_random_resized_crop", sampler_.height(), sampler_.width(), args) {
    args.Finish();
  }

  OpProperties properties() const override {
    return {
        .kind = OpKind::kMap, .parallelizable = true, .deterministic = false, .stateless = true};
  }

  std::optional<int64_t> EpochOutputs(std::optional<int64_t> in) const override { return in; }
  void Process(Element in, std::vector<Element>& out, const OpContext& ctx) override {
    JpegReader& reader = JpegReader::ForThread();
    AbortOnExit abort_on_exit(reader);
    const Header header = decoder_.ReadHeader(reader, in, ctx);
    SplitMix64 rng = ElementRng(sampler_.seed(), ctx, in);
    const Crop c = sampler_.Draw(rng, header.height, header.width);
    const Window win{static_cast<double>(c.top), static_cast<double>(c.left),
                     static_cast<double>(c.h), static_cast<double>(c.w)};
    decoder_.Emit(reader, header, win, std::move(in), out, ctx);
  }

 private:
  CropSampler sampler_;
  WindowDecoder decoder_;
};

SLUICE_REGISTER_OP("decode_random_resized_crop", DecodeRandomResizedCropOp);

// ---------------------------------------------------------------------------------------------
// decode_resize

// torchvision's evaluation transform Resize(resize) + CenterCrop(size) in one step that decodes
// only the centre window, at the DCT scale DctScale picks for it.
class DecodeResizeOp : public MapOp {
 public:
  explicit DecodeResizeOp(OpArgs& args)
      : size_(SizeArg(args)), decoder_("decode_resize", size_.first, size_.second, args) {
    const int64_t larger = std::max(size_.first, size_.second);
    resize_ = args.Int("resize", (larger * 256 + 112) / 224);  // 224 -> 256, as ImageNet's eval
    if (resize_ < larger || resize_ > (int64_t{1} << 16)) {
      args.Fail("resize", fmt::format("must be in [{}, 65536] (at least each side of size, so "
                                      "that the centre crop fits), got {}",
                                      larger, resize_));
    }
    args.Finish();
  }

  OpProperties properties() const override {
    return {.kind = OpKind::kMap, .parallelizable = true, .deterministic = true, .stateless = true};
  }

  std::optional<int64_t> EpochOutputs(std::optional<int64_t> in) const override { return in; }
  void Process(Element in, std::vector<Element>& out, const OpContext& ctx) override {
    JpegReader& reader = JpegReader::ForThread();
    AbortOnExit abort_on_exit(reader);
    const Header header = decoder_.ReadHeader(reader, in, ctx);
    decoder_.Emit(reader, header, CentreWindow(header.height, header.width), std::move(in), out,
                  ctx);
  }

 private:
  // torchvision: the shorter side becomes `resize` and the longer int(resize * long / short);
  // the crop's corner is int(round((resized - size) / 2)) (Python rounds half to even, as
  // nearbyint does). The window is that crop mapped back onto the full image.
  Window CentreWindow(int64_t img_h, int64_t img_w) const {
    const auto [height, width] = size_;
    const int64_t short_side = std::min(img_h, img_w), long_side = std::max(img_h, img_w);
    const auto resized_long =
        static_cast<int64_t>(static_cast<double>(resize_) * static_cast<double>(long_side) /
                             static_cast<double>(short_side));
    const bool portrait = img_h > img_w;
    const int64_t new_h = portrait ? resized_long : resize_;
    const int64_t new_w = portrait ? resize_ : resized_long;
    const double fy = static_cast<double>(img_h) / static_cast<double>(new_h);
    const double fx = static_cast<double>(img_w) / static_cast<double>(new_w);
    const double top = std::nearbyint(static_cast<double>(new_h - height) / 2.0);
    const double left = std::nearbyint(static_cast<double>(new_w - width) / 2.0);
    return {top * fy, left * fx, static_cast<double>(height) * fy, static_cast<double>(width) * fx};
  }

  std::pair<int64_t, int64_t> size_;
  WindowDecoder decoder_;
  int64_t resize_ = 0;
};

SLUICE_REGISTER_OP("decode_resize", DecodeResizeOp);

}  // namespace
}  // namespace sluice::pipeline
