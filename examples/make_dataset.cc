// Writes a deterministic example dataset (JPEG images, text corpus, vocab) for sluice pipelines.
//
// Every byte is a pure function of the flags: the synthesis below uses only integer arithmetic,
// because floating point is not reproducible across machines (GCC and Clang contract a * b + c
// into FMA on AArch64, and libm's pow/exp/sin differ in the last bit between libraries).
#include <fmt/format.h>
#include <turbojpeg.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
#include <iterator>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace {

namespace fs = std::filesystem;

constexpr int kTextFiles = 8;
constexpr int kMaxSide = 4096;     // Keeps the per-image working buffer under 200 MiB.
constexpr int64_t kOne = 1 << 16;  // 1.0 in the Q16 fixed point used throughout.
constexpr int kGrainSigma = 6;     // Per-pixel noise, in 8-bit levels.
constexpr int kGaussSd = 37837;    // Standard deviation of Rng::Gauss(): 65536 * sqrt(4 / 12).
constexpr uint64_t kTextStream = 1ULL << 40;  // Stream ids below this are images.

// A failure to report as `make_dataset: <what>: <path>` (or without the path when it is empty).
class DatasetError : public std::runtime_error {
 public:
  DatasetError(const std::string& what, fs::path path)
      : std::runtime_error(what), path_(std::move(path)) {}
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// xoshiro256** (Blackman & Vigna, "Scrambled linear pseudorandom number generators", 2018),
// seeded through splitmix64 as its authors recommend. Each (seed, stream) pair is an
// independent sequence, so image i does not depend on how many images are requested.
class Rng {
 public:
  Rng(uint64_t seed, uint64_t stream) {
    uint64_t x = seed ^ (stream * 0xd1b54a32d192ed03ULL);
    for (uint64_t& s : s_) s = SplitMix64(x);
  }

  uint64_t Next() {
    const uint64_t result = Rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = Rotl(s_[3], 45);
    return result;
  }

  // Uniform in [0, n) by multiply-shift (Lemire); the bias is below 2^-32 for any n.
  uint32_t Below(uint32_t n) { return static_cast<uint32_t>(((Next() >> 32) * n) >> 32); }

  // Uniform in [lo, hi].
  int Range(int lo, int hi) {
    return lo + static_cast<int>(Below(static_cast<uint32_t>(hi - lo + 1)));
  }

  // Approximately normal with mean 0 and standard deviation kGaussSd: the Irwin-Hall sum of four
  // 16-bit uniforms, which needs no log or cos.
  int32_t Gauss() {
    const uint64_t u = Next();
    const int32_t sum = static_cast<int32_t>((u & 0xffff) + ((u >> 16) & 0xffff) +
                                             ((u >> 32) & 0xffff) + (u >> 48));
    return sum - 2 * 65535;
  }

 private:
  static uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  static uint64_t SplitMix64(uint64_t& x) {
    uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }

  std::array<uint64_t, 4> s_;
};

// floor(sqrt(x)), bit by bit.
uint64_t ISqrt(uint64_t x) {
  uint64_t result = 0;
  uint64_t bit = 1ULL << 62;
  while (bit > x) bit >>= 2;
  while (bit != 0) {
    if (x >= result + bit) {
      x -= result + bit;
      result = (result >> 1) + bit;
    } else {
      result >>= 1;
    }
    bit >>= 2;
  }
  return result;
}

// 3t^2 - 2t^3 for t in [0, kOne], in Q16.
int64_t SmoothStep(int64_t t) { return (t * t * (3 * kOne - 2 * t)) >> 32; }

int64_t Clamp(int64_t v, int64_t lo, int64_t hi) { return std::min(std::max(v, lo), hi); }

using Color = std::array<int32_t, 3>;  // 8-bit levels per channel.

Color RandomColor(Rng& rng) { return {rng.Range(0, 255), rng.Range(0, 255), rng.Range(0, 255)}; }

// One octave of 2-D value noise: random lattice values, smoothstep-interpolated. Lattice indices
// and weights are tabulated per column and per row so the pixel loop is four loads and three lerps.
class NoiseOctave {
 public:
  NoiseOctave(Rng& rng, int width, int height, int cell)
      : grid_w_((width - 1) / cell + 2),
        lattice_(static_cast<size_t>(grid_w_) * ((height - 1) / cell + 2)) {
    for (int32_t& v : lattice_) v = rng.Range(-256, 255);
    Tabulate(width, cell, col_index_, col_weight_);
    Tabulate(height, cell, row_index_, row_weight_);
  }

  // Noise at (x, y) in [-256, 256), i.e. [-1, 1) in Q8.
  int32_t At(int x, int y) const {
    const int32_t* r0 = lattice_.data() + static_cast<size_t>(row_index_[y]) * grid_w_;
    const int32_t* r1 = r0 + grid_w_;
    const int i = col_index_[x];
    const int32_t fx = col_weight_[x];
    const int32_t top = r0[i] + (((r0[i + 1] - r0[i]) * fx) >> 16);
    const int32_t bottom = r1[i] + (((r1[i + 1] - r1[i]) * fx) >> 16);
    return top + (((bottom - top) * row_weight_[y]) >> 16);
  }

 private:
  static void Tabulate(int n, int cell, std::vector<int32_t>& index, std::vector<int32_t>& weight) {
    index.resize(n);
    weight.resize(n);
    for (int i = 0; i < n; ++i) {
      index[i] = i / cell;
      weight[i] = static_cast<int32_t>(SmoothStep((i % cell) * kOne / cell));
    }
  }

  int grid_w_;
  std::vector<int32_t> lattice_;
  std::vector<int32_t> col_index_, col_weight_, row_index_, row_weight_;
};

// Paints a two-colour linear gradient in a random direction into acc (Q8 levels, RGB).
void PaintGradient(Rng& rng, int width, int height, std::vector<int32_t>& acc) {
  const Color c0 = RandomColor(rng);
  const Color c1 = RandomColor(rng);
  int64_t dx = 0;
  int64_t dy = 0;
  while (dx == 0 && dy == 0) {
    dx = rng.Range(-256, 256);
    dy = rng.Range(-256, 256);
  }
  // Normalise the projection onto the direction so t spans [0, 1] across the image's corners.
  const int64_t corners[] = {0, (width - 1) * dx, (height - 1) * dy,
                             (width - 1) * dx + (height - 1) * dy};
  const int64_t p_min = *std::min_element(std::begin(corners), std::end(corners));
  const int64_t p_max = *std::max_element(std::begin(corners), std::end(corners));
  const int64_t inv_span = (int64_t{1} << 40) / (p_max - p_min);
  int32_t* out = acc.data();
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      const int64_t t = Clamp(((x * dx + y * dy - p_min) * inv_span) >> 24, 0, kOne);
      for (int c = 0; c < 3; ++c) {
        *out++ = static_cast<int32_t>(c0[c] * 256 + (((c1[c] - c0[c]) * 256 * t) >> 16));
      }
    }
  }
}

// Blends a soft, rotated, side-lit ellipse of random colour into acc.
void PaintBlob(Rng& rng, int width, int height, std::vector<int32_t>& acc) {
  const int min_dim = std::min(width, height);
  const int64_t cx = rng.Range(-width / 8, width + width / 8);
  const int64_t cy = rng.Range(-height / 8, height + height / 8);
  const int64_t rx = rng.Range(std::max(4, min_dim / 12), std::max(4, min_dim / 2));
  const int64_t ry = rng.Range(std::max(4, min_dim / 12), std::max(4, min_dim / 2));
  int64_t a = 0;
  int64_t b = 0;
  while (a == 0 && b == 0) {
    a = rng.Range(-1024, 1024);
    b = rng.Range(-1024, 1024);
  }
  // Unit axis (ua, ub) in Q12; rotation without sin/cos.
  const int64_t norm = static_cast<int64_t>(ISqrt(static_cast<uint64_t>(a * a + b * b)));
  const int64_t ua = a * 4096 / norm;
  const int64_t ub = b * 4096 / norm;
  const int64_t inner = rng.Range(3277, 62259);   // Opaque core radius^2 in Q16: 0.05 .. 0.95.
  const int64_t alpha = rng.Range(22938, 58982);  // Opacity in Q16: 0.35 .. 0.9.
  const int64_t light = rng.Range(0, 48);         // Brightening toward one side, in levels.
  const Color color = RandomColor(rng);

  // Offsets along the axes are in Q4 pixels, so (pu / rx)^2 in Q16 is (pu^2 * ku) >> 24.
  const int64_t ku = (int64_t{1} << 40) / (rx * rx * 256);
  const int64_t kv = (int64_t{1} << 40) / (ry * ry * 256);
  const int64_t inv_soft = (int64_t{1} << 32) / (kOne - inner);
  const int64_t light_k = light * 256 * kOne / (rx * 16);
  const int64_t r = std::max(rx, ry);
  const int64_t x0 = std::max<int64_t>(0, cx - r), x1 = std::min<int64_t>(width - 1, cx + r);
  const int64_t y0 = std::max<int64_t>(0, cy - r), y1 = std::min<int64_t>(height - 1, cy + r);
  for (int64_t y = y0; y <= y1; ++y) {
    const int64_t ddy = y - cy;
    for (int64_t x = x0; x <= x1; ++x) {
      const int64_t ddx = x - cx;
      const int64_t pu = (ddx * ua + ddy * ub) >> 8;
      const int64_t pv = (ddy * ua - ddx * ub) >> 8;
      const int64_t q = (pu * pu * ku + pv * pv * kv) >> 24;
      if (q >= kOne) continue;
      const int64_t t = std::min(kOne, ((kOne - q) * inv_soft) >> 16);
      const int64_t weight = (SmoothStep(t) * alpha) >> 16;
      const int64_t shade = -((pu * light_k) >> 16);
      int32_t* px = acc.data() + (static_cast<size_t>(y) * width + x) * 3;
      for (int c = 0; c < 3; ++c) {
        const int64_t target = color[c] * 256 + shade;
        px[c] += static_cast<int32_t>(((target - px[c]) * weight) >> 16);
      }
    }
  }
}

// Renders one photograph-like RGB image: gradient, soft blobs, 4-octave value-noise texture and
// per-pixel grain. Flat images would make JPEG decoding unrealistically cheap.
std::vector<uint8_t> RenderImage(Rng& rng, int width, int height) {
  std::vector<int32_t> acc(static_cast<size_t>(width) * height * 3);
  PaintGradient(rng, width, height, acc);
  const int blobs = rng.Range(3, 7);
  for (int i = 0; i < blobs; ++i) PaintBlob(rng, width, height, acc);

  // Octave amplitudes fall by 0.7 per octave and sum to kOne.
  constexpr std::array<int32_t, 4> kOctaveAmp = {25872, 18110, 12677, 8877};
  const int min_dim = std::min(width, height);
  const int base_cell = rng.Range(std::max(8, min_dim / 8), std::max(8, min_dim / 3));
  std::vector<NoiseOctave> octaves;
  for (size_t o = 0; o < kOctaveAmp.size(); ++o) {
    octaves.emplace_back(rng, width, height, std::max(2, base_cell >> o));
  }
  const int64_t texture = rng.Range(30, 80);  // Texture strength in levels.
  std::array<int64_t, 3> tint;                // Per-channel texture gain in Q8: 0.7 .. 1.3.
  for (int64_t& g : tint) g = rng.Range(179, 333);
  const int64_t grain_k = int64_t{kGrainSigma} * 256 * kOne / kGaussSd;

  std::vector<uint8_t> rgb(acc.size());
  const int32_t* in = acc.data();
  uint8_t* out = rgb.data();
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      int64_t sum = 0;
      for (size_t o = 0; o < octaves.size(); ++o) sum += octaves[o].At(x, y) * kOctaveAmp[o];
      const int64_t lum = (sum * texture) >> 16;  // Q8 levels.
      for (int c = 0; c < 3; ++c) {
        const int64_t grain = (rng.Gauss() * grain_k) >> 16;
        const int64_t v = *in++ + ((lum * tint[c]) >> 8) + grain;
        *out++ = static_cast<uint8_t>(Clamp((v + 128) >> 8, 0, 255));
      }
    }
  }
  return rgb;
}

// Writes bytes to path through a temporary sibling and a rename, so an interrupted run never
// leaves a half-written file under the final name.
void WriteFileAtomically(const fs::path& path, std::string_view bytes) {
  const fs::path tmp = path.parent_path() / fmt::format(".{}.tmp", path.filename().string());
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (f == nullptr) {
    throw DatasetError(fmt::format("cannot create ({})", std::strerror(errno)), tmp);
  }
  const bool wrote = std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size();
  const int write_errno = errno;
  if (std::fclose(f) != 0 || !wrote) {
    const int err = wrote ? errno : write_errno;
    std::error_code ignored;
    fs::remove(tmp, ignored);
    throw DatasetError(fmt::format("cannot write ({})", std::strerror(err)), tmp);
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) {
    std::error_code ignored;
    fs::remove(tmp, ignored);
    throw DatasetError(fmt::format("cannot rename ({})", ec.message()), path);
  }
}

void CreateDirectories(const fs::path& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw DatasetError(fmt::format("cannot create directory ({})", ec.message()), dir);
}

// Removes images left by an earlier run with a larger --images, and temporaries left by an
// interrupted one, so the directory holds exactly this run's dataset. Touches only names this
// program writes: img_<digits>.jpg and .img_<digits>.jpg.tmp.
void RemoveStaleImages(const fs::path& dir, int count) {
  std::error_code ec;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir, ec)) {
    std::string name = entry.path().filename().string();
    const bool temporary = name.starts_with(".") && name.ends_with(".tmp");
    if (temporary) name = name.substr(1, name.size() - 5);
    if (!name.starts_with("img_") || !name.ends_with(".jpg")) continue;
    const std::string digits = name.substr(4, name.size() - 8);
    if (digits.empty() || digits.size() > 9 ||
        !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      continue;
    }
    if (temporary || std::stoi(digits) >= count) fs::remove(entry.path(), ec);
  }
}

struct TjDeleter {
  void operator()(void* handle) const { tjDestroy(handle); }
};

// Encodes RGB pixels as a 4:2:0 baseline JPEG with the accurate integer DCT (bit-exact across
// libjpeg-turbo's SIMD back ends), into one buffer sized for the largest image.
class JpegEncoder {
 public:
  explicit JpegEncoder(int max_side)
      : handle_(tjInitCompress()),
        buffer_(tjAlloc(static_cast<int>(tjBufSize(max_side, max_side, TJSAMP_420)))) {
    if (handle_ == nullptr || buffer_ == nullptr) {
      throw DatasetError("cannot initialise libturbojpeg", "");
    }
  }
  ~JpegEncoder() { tjFree(buffer_); }
  JpegEncoder(const JpegEncoder&) = delete;
  JpegEncoder& operator=(const JpegEncoder&) = delete;

  // The returned bytes stay valid until the next call.
  std::string_view Encode(const std::vector<uint8_t>& rgb, int width, int height, int quality,
                          const fs::path& path) {
    unsigned long size = 0;
    if (tjCompress2(handle_.get(), rgb.data(), width, 0, height, TJPF_RGB, &buffer_, &size,
                    TJSAMP_420, quality, TJFLAG_ACCURATEDCT | TJFLAG_NOREALLOC) != 0) {
      throw DatasetError(fmt::format("JPEG encoding failed ({})", tjGetErrorStr2(handle_.get())),
                         path);
    }
    return {reinterpret_cast<const char*>(buffer_), size};
  }

 private:
  std::unique_ptr<void, TjDeleter> handle_;
  unsigned char* buffer_;
};

// ~300 common English words, most frequent first; the rank sets the Zipf weight.
constexpr auto kWords = std::to_array<std::string_view>({
    "the",      "of",       "and",    "to",     "a",        "in",      "is",       "it",
    "you",      "that",     "he",     "was",    "for",      "on",      "are",      "with",
    "as",       "his",      "they",   "be",     "at",       "one",     "have",     "this",
    "from",     "or",       "had",    "by",     "hot",      "but",     "some",     "what",
    "there",    "we",       "can",    "out",    "other",    "were",    "all",      "your",
    "when",     "up",       "use",    "word",   "how",      "said",    "an",       "each",
    "she",      "which",    "do",     "their",  "time",     "if",      "will",     "way",
    "about",    "many",     "then",   "them",   "would",    "write",   "like",     "so",
    "these",    "her",      "long",   "make",   "thing",    "see",     "him",      "two",
    "has",      "look",     "more",   "day",    "could",    "go",      "come",     "did",
    "my",       "sound",    "no",     "most",   "number",   "who",     "over",     "know",
    "water",    "than",     "call",   "first",  "people",   "may",     "down",     "side",
    "been",     "now",      "find",   "any",    "new",      "work",    "part",     "take",
    "get",      "place",    "made",   "live",   "where",    "after",   "back",     "little",
    "only",     "round",    "man",    "year",   "came",     "show",    "every",    "good",
    "me",       "give",     "our",    "under",  "name",     "very",    "through",  "just",
    "form",     "much",     "great",  "think",  "say",      "help",    "low",      "line",
    "before",   "turn",     "cause",  "same",   "mean",     "move",    "right",    "boy",
    "old",      "too",      "does",   "tell",   "sentence", "set",     "three",    "want",
    "air",      "well",     "also",   "play",   "small",    "end",     "put",      "home",
    "read",     "hand",     "large",  "add",    "even",     "land",    "here",     "must",
    "big",      "high",     "such",   "follow", "act",      "why",     "ask",      "men",
    "change",   "went",     "light",  "kind",   "off",      "need",    "house",    "picture",
    "try",      "us",       "again",  "animal", "point",    "mother",  "world",    "near",
    "build",    "earth",    "father", "head",   "stand",    "own",     "page",     "should",
    "country",  "found",    "answer", "school", "grow",     "study",   "still",    "learn",
    "plant",    "cover",    "food",   "sun",    "four",     "thought", "let",      "keep",
    "eye",      "never",    "last",   "door",   "between",  "city",    "tree",     "cross",
    "since",    "hard",     "start",  "might",  "story",    "saw",     "far",      "sea",
    "draw",     "left",     "late",   "run",    "while",    "press",   "close",    "night",
    "real",     "life",     "few",    "stop",   "open",     "seem",    "together", "next",
    "white",    "children", "begin",  "got",    "walk",     "example", "paper",    "often",
    "always",   "music",    "those",  "both",   "mark",     "book",    "letter",   "until",
    "mile",     "river",    "car",    "feet",   "care",     "second",  "group",    "carry",
    "took",     "rain",     "eat",    "room",   "friend",   "began",   "idea",     "fish",
    "mountain", "north",    "once",   "base",   "hear",     "horse",   "cut",      "sure",
    "watch",    "color",    "face",   "wood",   "main",     "enough",  "plain",    "girl",
    "young",    "ready",    "above",  "ever",   "red",      "list",    "though",   "feel",
    "talk",     "bird",     "soon",   "body",   "dog",      "family",  "direct",   "leave",
    "song",     "measure",  "state",  "black",
});

// Sub-word pieces appended to the vocabulary after the words.
constexpr std::array<std::string_view, 12> kPieces = {"s",  "ed", "ing", "er",   "th", "ly",
                                                      "es", "re", "un",  "tion", "al", "est"};

constexpr size_t kVocabWords = 250;  // Fewer than kWords, so the rarest words map to [UNK].

// Sorts a copy rather than comparing all pairs, which would exceed Clang's constexpr step limit.
template <size_t N>
constexpr bool AllDistinct(std::array<std::string_view, N> words) {
  std::sort(words.begin(), words.end());
  return std::adjacent_find(words.begin(), words.end()) == words.end();
}
static_assert(AllDistinct(kWords), "kWords must not repeat a word");
static_assert(kVocabWords < kWords.size());

// Samples word ranks with probability proportional to rank^-1.1 (Zipf's law, s = 1.1).
class ZipfSampler {
 public:
  explicit ZipfSampler(size_t n) {
    uint64_t total = 0;
    for (uint64_t rank = 1; rank <= n; ++rank) {
      total += Weight(rank);
      cumulative_.push_back(total);
    }
  }

  size_t Sample(Rng& rng) const {
    const uint64_t u = rng.Next() % cumulative_.back();
    return static_cast<size_t>(std::upper_bound(cumulative_.begin(), cumulative_.end(), u) -
                               cumulative_.begin());
  }

 private:
  // rank^-1.1 in Q30 as 2^50 / (rank * rank^0.1), with rank^0.1 found in Q20 by bisection on
  // y^10 <= rank, so no libm call is involved. Valid for rank < 1024.
  static uint64_t Weight(uint64_t rank) {
    uint64_t lo = 1 << 20;  // rank^0.1 >= 1.
    uint64_t hi = 1 << 21;  // rank^0.1 < 2 for rank < 1024.
    while (hi - lo > 1) {
      const uint64_t mid = (lo + hi) / 2;
      uint64_t power = 1 << 20;
      for (int i = 0; i < 10; ++i) power = (power * mid) >> 20;
      (power <= (rank << 20) ? lo : hi) = mid;
    }
    return (uint64_t{1} << 50) / (rank * lo);
  }

  std::vector<uint64_t> cumulative_;
};

// One English-like sentence of 4..60 words: mostly around 14 words, with a short and a long tail
// so that bucketing by length matters.
std::string MakeSentence(Rng& rng, const ZipfSampler& zipf) {
  int words = 0;
  const uint32_t shape = rng.Below(100);
  if (shape < 15) {
    words = rng.Range(4, 8);
  } else if (shape < 85) {
    words = static_cast<int>(Clamp(14 + int64_t{rng.Gauss()} * 6 / kGaussSd, 4, 60));
  } else {
    words = rng.Range(25, 60);
  }
  std::string line;
  for (int i = 0; i < words; ++i) {
    const size_t start = line.size();
    line += kWords[zipf.Sample(rng)];
    if (i == 0) line[start] = static_cast<char>(line[start] - 'a' + 'A');
    if (i + 1 < words) {
      const uint32_t p = rng.Below(1000);
      if (p < 70) {
        line += ',';
      } else if (p < 78) {
        line += ';';
      }
      line += ' ';
    }
  }
  const uint32_t end = rng.Below(100);
  line += end < 85 ? '.' : (end < 95 ? '?' : '!');
  return line;
}

struct Options {
  fs::path out_dir;
  int images = 256;
  int min_side = 160;
  int max_side = 512;
  int lines = 20000;
  uint64_t seed = 1;
  int quality = 90;
};

struct Totals {
  int files = 0;
  uint64_t image_bytes = 0;
  uint64_t text_bytes = 0;
  uint64_t vocab_bytes = 0;
  uint64_t manifest_bytes = 0;
};

void WriteImages(const Options& opt, Totals& totals) {
  const fs::path dir = opt.out_dir / "images";
  CreateDirectories(dir);
  RemoveStaleImages(dir, opt.images);
  JpegEncoder encoder(opt.max_side);
  for (int i = 0; i < opt.images; ++i) {
    Rng rng(opt.seed, static_cast<uint64_t>(i));
    const int width = rng.Range(opt.min_side, opt.max_side);
    const int height = rng.Range(opt.min_side, opt.max_side);
    const fs::path path = dir / fmt::format("img_{:05d}.jpg", i);
    const std::string_view jpeg =
        encoder.Encode(RenderImage(rng, width, height), width, height, opt.quality, path);
    WriteFileAtomically(path, jpeg);
    totals.image_bytes += jpeg.size();
    ++totals.files;
  }
}

void WriteText(const Options& opt, Totals& totals) {
  const fs::path dir = opt.out_dir / "text";
  CreateDirectories(dir);
  Rng rng(opt.seed, kTextStream);
  const ZipfSampler zipf(kWords.size());
  for (int f = 0; f < kTextFiles; ++f) {
    const int lines = opt.lines / kTextFiles + (f < opt.lines % kTextFiles ? 1 : 0);
    std::string text;
    for (int i = 0; i < lines; ++i) {
      text += MakeSentence(rng, zipf);
      text += '\n';
    }
    WriteFileAtomically(dir / fmt::format("corpus_{:02d}.txt", f), text);
    totals.text_bytes += text.size();
    ++totals.files;
  }

  std::string vocab = "[PAD]\n[UNK]\n";
  for (size_t i = 0; i < kVocabWords; ++i) {
    fmt::format_to(std::back_inserter(vocab), "{}\n", kWords[i]);
  }
  for (std::string_view piece : kPieces) fmt::format_to(std::back_inserter(vocab), "{}\n", piece);
  WriteFileAtomically(dir / "vocab.txt", vocab);
  totals.vocab_bytes = vocab.size();
  ++totals.files;
}

void WriteManifest(const Options& opt, Totals& totals) {
  const uint64_t data_bytes = totals.image_bytes + totals.text_bytes + totals.vocab_bytes;
  const std::string manifest = fmt::format(
      "sluice example dataset (make_dataset)\n"
      "seed {}\n"
      "images/      {} JPEG files, {}..{} px per side, quality {}, 4:2:0, {} bytes\n"
      "text/        {} corpus files, {} lines, {} bytes\n"
      "text/        vocab.txt, {} tokens ([PAD], [UNK], {} words, {} pieces), {} bytes\n"
      "total        {} files, {} bytes (excluding this manifest)\n",
      opt.seed, opt.images, opt.min_side, opt.max_side, opt.quality, totals.image_bytes, kTextFiles,
      opt.lines, totals.text_bytes, 2 + kVocabWords + kPieces.size(), kVocabWords, kPieces.size(),
      totals.vocab_bytes, totals.files, data_bytes);
  WriteFileAtomically(opt.out_dir / "MANIFEST.txt", manifest);
  totals.manifest_bytes = manifest.size();
  ++totals.files;
}

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  CLI::App app{"Writes a deterministic example dataset (JPEG images, text corpus, vocab)."};
  app.name("make_dataset");
  app.add_option("OUT_DIR", opt.out_dir, "Directory to write into (created if missing)")
      ->required();
  app.add_option("--images", opt.images, "Number of JPEG images")
      ->capture_default_str()
      ->check(CLI::Range(0, 1000000));
  app.add_option("--min-side", opt.min_side, "Smallest image width or height, in pixels")
      ->capture_default_str()
      ->check(CLI::Range(8, kMaxSide));
  app.add_option("--max-side", opt.max_side, "Largest image width or height, in pixels")
      ->capture_default_str()
      ->check(CLI::Range(8, kMaxSide));
  app.add_option("--lines", opt.lines, "Total lines of text across the corpus files")
      ->capture_default_str()
      ->check(CLI::Range(0, 100000000));
  app.add_option("--seed", opt.seed, "Seed; the same flags always give the same bytes")
      ->capture_default_str();
  app.add_option("--quality", opt.quality, "JPEG quality")
      ->capture_default_str()
      ->check(CLI::Range(1, 100));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  if (opt.min_side > opt.max_side) {
    fmt::print(stderr, "make_dataset: --min-side ({}) must not exceed --max-side ({})\n",
               opt.min_side, opt.max_side);
    return 2;
  }

  const auto start = std::chrono::steady_clock::now();
  Totals totals;
  try {
    CreateDirectories(opt.out_dir);
    WriteImages(opt, totals);
    WriteText(opt, totals);
    WriteManifest(opt, totals);
  } catch (const DatasetError& e) {
    const std::string where = e.path().empty() ? "" : ": " + e.path().string();
    fmt::print(stderr, "make_dataset: {}{}\n", e.what(), where);
    return 1;
  } catch (const std::exception& e) {
    fmt::print(stderr, "make_dataset: {}: {}\n", e.what(), opt.out_dir.string());
    return 1;
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const uint64_t bytes =
      totals.image_bytes + totals.text_bytes + totals.vocab_bytes + totals.manifest_bytes;
  fmt::print("make_dataset: wrote {} files ({:.1f} MB) to {} in {:.2f} s\n", totals.files,
             static_cast<double>(bytes) / 1e6, opt.out_dir.string(), seconds);
  return 0;
}
