// FER2013 CSV parser.
//
// Grammar (the tests hold it to the pure-numpy oracle tests/native_reference.py,
// messages included):
//   * records are lines ending in \n; one \r before the \n is dropped; lines holding only
//     whitespace are skipped (they still count for line numbers);
//   * fields are separated by ',' ; a field whose first non-blank character is '"' is quoted:
//     it runs to the next '"' that is not doubled ("" stays in the content as is), and only
//     blanks may follow the closing quote before ',' or the end of the line; a quoted field
//     never spans lines;
//   * pixels: whitespace-separated ASCII decimal integers in 0..255, exactly side*side;
//   * emotion: a decimal integer in 0..num_classes-1; Usage: one of the allowed names
//     (both trimmed of whitespace).
//
// Two implementations, no more:
//   * the fast path (parse_row_fast): one pass over a row in the shape real files have
//     (no blanks around fields, pixels as 1-3 digit tokens separated by single spaces,
//     fields quoted or not). It classifies 64 bytes at a time into space and digit bitmasks
//     and walks the separators: on x86, block_sse2 also computes every token's value in the
//     same pass; elsewhere (aarch64) masks_portable finds the separators and token_value
//     reads each token's up to three digits. It only ever accepts a row or declines it; it
//     never words an error.
//   * the simple path (parse_row_slow): byte at a time, the whole grammar, and the one that
//     words every error. It runs for every row the fast path declines.
// Rows are split across threads; the Python binding releases the GIL for all of it.
#include "parse.hpp"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>

#include "common.hpp"

#ifdef FER_HAVE_SSE2
#include <emmintrin.h>
#endif
#if defined(_MSC_VER) && !defined(__clang__)
#include <intrin.h>
#endif
#include <cstdlib>
#include <new>
#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace fer {
namespace {

constexpr int kMaxCols = 64;

std::atomic<PixelsPath> g_pixels_path{PixelsPath::kSimd};
constexpr size_t kDisplayLimit = 20;

inline int popcount64(uint64_t x) {  // portable: baseline x86-64 has no POPCNT instruction
  x = x - ((x >> 1) & 0x5555555555555555ull);
  x = (x & 0x3333333333333333ull) + ((x >> 2) & 0x3333333333333333ull);
  x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0full;
  return static_cast<int>((x * 0x0101010101010101ull) >> 56);
}

inline int ctz64(uint64_t x) {
#if defined(_MSC_VER) && !defined(__clang__)
  unsigned long i;
  _BitScanForward64(&i, x);
  return static_cast<int>(i);
#else
  return __builtin_ctzll(x);
#endif
}

struct Line {
  const char* b;
  const char* e;  // excludes the \n and a \r before it
  int64_t lineno;
};

struct Field {
  const char* b;
  const char* e;
};

// Token shown in an error message: Python-repr-like, quoted, at most 20 bytes.
std::string display_quoted(const char* b, const char* e) {
  size_t n = static_cast<size_t>(e - b), m = std::min(n, kDisplayLimit);
  std::string s = "'";
  for (size_t i = 0; i < m; ++i) {
    unsigned char c = static_cast<unsigned char>(b[i]);
    if (c == '\'') {
      s += "\\'";
    } else if (c == '\\') {
      s += "\\\\";
    } else if (c >= 0x20 && c < 0x7f) {
      s += static_cast<char>(c);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      s += buf;
    }
  }
  s += "'";
  if (n > kDisplayLimit) s += "...";
  return s;
}

// An all-digit token shown as a number, at most 20 digits.
std::string display_digits(const char* b, const char* e) {
  size_t n = static_cast<size_t>(e - b), m = std::min(n, kDisplayLimit);
  std::string s(b, m);
  if (n > kDisplayLimit) s += "...";
  return s;
}

inline void trim(const char*& b, const char*& e) {
  while (b < e && is_ws(static_cast<unsigned char>(*b))) ++b;
  while (e > b && is_ws(static_cast<unsigned char>(e[-1]))) --e;
}

inline bool all_digits(const char* b, const char* e) {
  for (const char* p = b; p < e; ++p)
    if (!is_digit(static_cast<unsigned char>(*p))) return false;
  return true;
}

// "-12": an integer, but a negative one (out of range, not "not an integer").
inline bool negative_integer(const char* b, const char* e) {
  return e - b > 1 && *b == '-' && all_digits(b + 1, e);
}

// Value of an all-digit token, saturated at 1000 (anything above 255 is an error anyway).
inline unsigned digits_value(const char* b, const char* e) {
  unsigned v = 0;
  for (const char* p = b; p < e; ++p) v = std::min(v * 10u + static_cast<unsigned>(*p - '0'), 1000u);
  return v;
}

// Splits [p, e) into fields. Stores the first `max_fields` spans, counts all of them.
bool split_fields(const char* p, const char* e, Field* fields, int max_fields, int& nfields,
                  std::string& err) {
  int j = 0;
  for (;;) {
    ++j;
    const char* q = p;
    while (q < e && (*q == ' ' || *q == '\t')) ++q;
    if (q < e && *q == '"') {
      const char* k = q + 1;
      for (;;) {
        k = static_cast<const char*>(std::memchr(k, '"', static_cast<size_t>(e - k)));
        if (!k) {
          err = "unterminated quoted field " + std::to_string(j);
          return false;
        }
        if (k + 1 < e && k[1] == '"') {
          k += 2;
          continue;
        }
        break;
      }
      if (j <= max_fields) fields[j - 1] = Field{q + 1, k};
      ++k;
      while (k < e && (*k == ' ' || *k == '\t')) ++k;
      if (k == e) {
        nfields = j;
        return true;
      }
      if (*k != ',') {
        err = "unexpected character after closing quote in field " + std::to_string(j);
        return false;
      }
      p = k + 1;
    } else {
      const char* c = static_cast<const char*>(std::memchr(p, ',', static_cast<size_t>(e - p)));
      if (!c) {
        if (j <= max_fields) fields[j - 1] = Field{p, e};
        nfields = j;
        return true;
      }
      if (j <= max_fields) fields[j - 1] = Field{p, c};
      p = c + 1;
    }
  }
}

// The value of a token of at most three digits whose last digit is at p (p[-1] and p[-2] are
// read, and count only while they are digits). Tokens of four digits or more never get here.
// Branch-free (token lengths are unpredictable): a factor of 0 cancels a non-digit's garbage.
inline uint32_t token_value(const char* p) {
  const uint32_t d0 = static_cast<unsigned char>(p[0]) - uint32_t{'0'};
  const uint32_t d1 = static_cast<unsigned char>(p[-1]) - uint32_t{'0'};
  const uint32_t d2 = static_cast<unsigned char>(p[-2]) - uint32_t{'0'};
  const uint32_t g1 = d1 < 10, g2 = d2 < 10;
  return d0 + g1 * (10 * d1 + g2 * 100 * d2);
}

// Bit i of `spaces` / `digits`: byte i of the 64 at src is ' ' / an ASCII digit. Portable
// SWAR: eight bytes per 64-bit word, each byte's answer in its high bit (bytes >= 0x80 are
// masked out first so that no addition carries into the next byte), then the eight high
// bits gathered into one byte by a multiplication.
inline uint64_t high_bits_to_mask(uint64_t x) {  // bit 8j+7 -> bit j
  return ((x >> 7) * 0x0102040810204080ull) >> 56;
}

inline void masks_portable(const char* src, uint64_t& spaces, uint64_t& digits) {
  constexpr uint64_t kLow7 = 0x7f7f7f7f7f7f7f7full, kHigh = 0x8080808080808080ull;
  uint64_t sp = 0, dg = 0;
  for (int k = 0; k < 8; ++k) {
    uint64_t w;
    std::memcpy(&w, src + 8 * k, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    w = __builtin_bswap64(w);  // byte j of memory in bits 8j..8j+7
#endif
    const uint64_t low = w & kLow7, ascii = ~w & kHigh;
    const uint64_t ge0 = low + 0x5050505050505050ull;     // high bit: byte >= '0'
    const uint64_t gt9 = low + 0x4646464646464646ull;     // high bit: byte >= ':'
    const uint64_t not_space = ((low ^ 0x2020202020202020ull) + kLow7) | (low ^ 0x2020202020202020ull);
    dg |= high_bits_to_mask(ge0 & ~gt9 & ascii) << (8 * k);
    sp |= high_bits_to_mask(~not_space & ascii) << (8 * k);
  }
  spaces = sp;
  digits = dg;
}

#ifdef FER_HAVE_SSE2
// The same masks for 64 bytes at src (src[-2] and src[-1] are read too), and, for every byte,
// the value token_value would give for a token ending there, in two parts:
//   tens_units[i] = d[i] + 10*d[i-1]   (d[i-1] counted only when byte i-1 is a digit)
//   hundreds[i]   = d[i-2]             (only when bytes i-1 and i-2 are both digits)
// so that walking the separators only reads two bytes per token.
struct Block {
  uint64_t spaces, digits;
  uint8_t* tens_units;  // 64 bytes
  uint8_t* hundreds;    // 64 bytes
};

inline void block_sse2(const char* src, Block& blk) {
  const __m128i space = _mm_set1_epi8(' '), zero = _mm_set1_epi8('0'), nine = _mm_set1_epi8(9);
  uint64_t sp = 0, dg = 0;
  for (int q = 0; q < 4; ++q) {
    const char* c = src + 16 * q;
    __m128i c0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(c));
    __m128i c1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(c - 1));
    __m128i c2 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(c - 2));
    __m128i d0 = _mm_sub_epi8(c0, zero), d1 = _mm_sub_epi8(c1, zero), d2 = _mm_sub_epi8(c2, zero);
    __m128i g0 = _mm_cmpeq_epi8(_mm_min_epu8(d0, nine), d0);  // unsigned d <= 9: a digit
    __m128i g1 = _mm_cmpeq_epi8(_mm_min_epu8(d1, nine), d1);
    __m128i g2 = _mm_cmpeq_epi8(_mm_min_epu8(d2, nine), d2);
    __m128i t = _mm_and_si128(d1, g1);
    // 10*t per byte: t <= 9, so the 16-bit shifts never carry into the neighbouring byte.
    __m128i ten_t = _mm_add_epi8(_mm_slli_epi16(t, 3), _mm_slli_epi16(t, 1));
    __m128i tu = _mm_add_epi8(_mm_and_si128(d0, g0), ten_t);
    __m128i h = _mm_and_si128(d2, _mm_and_si128(g1, g2));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(blk.tens_units + 16 * q), tu);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(blk.hundreds + 16 * q), h);
    sp |= static_cast<uint64_t>(static_cast<uint32_t>(_mm_movemask_epi8(_mm_cmpeq_epi8(c0, space))) & 0xffffu) << (16 * q);
    dg |= static_cast<uint64_t>(static_cast<uint32_t>(_mm_movemask_epi8(g0)) & 0xffffu) << (16 * q);
  }
  blk.spaces = sp;
  blk.digits = dg;
}
#endif

// Pixels field starting at b, in the canonical form (tokens of 1-3 digits, values <= 255,
// exactly one space between tokens, nothing before the first or after the last), written
// to out[0, npix). Returns false, having possibly written garbage, for anything else: the
// simple path then decides and words the error.
//
// The field may end before `limit`: parsing stops at the first byte that is neither a digit
// nor a space, and *field_end says where (limit if none). The caller decides whether that
// byte may end the field (',' for an unquoted field); this saves a separate comma search.
// Requires b - lo >= 2 (the block kernel looks two bytes back; lo is the buffer's start).
template <bool kSimd>
bool parse_pixels_fast(const char* lo, const char* b, const char* limit, uint8_t* out, int64_t npix,
                       const char** field_end) {
  if (b - lo < 2 || limit <= b) return false;
  size_t n = static_cast<size_t>(limit - b);
  const size_t blocks = (n + 63) / 64;
#ifdef FER_HAVE_SSE2
  thread_local std::vector<uint8_t> scratch;
  if (kSimd && scratch.size() < blocks * 128) scratch.resize(blocks * 128);
  uint8_t* tens_units = scratch.data();
  uint8_t* hundreds = scratch.data() + blocks * 64;
#endif

  // prev_*: the previous block's masks, last byte at bit 63. "A space before the field" makes a
  // leading blank an empty token.
  uint64_t bad = 0, prev_sp = uint64_t{1} << 63, prev_dg = 0;
  uint32_t acc = 0;
  int64_t count = 0;
  char tmp[3 + 64];
  for (size_t k = 0; k < blocks; ++k) {
    const char* p = b + 64 * k;
    const size_t avail = std::min<size_t>(64, n - 64 * k);
    const char* src = p;  // reads src[-3 .. 63] (src[-3]: token_value of a token ending at -1)
    if (avail < 64) {
      tmp[0] = k ? p[-3] : ' ';  // k == 0: a token ending at -1 is a leading blank, refused below
      tmp[1] = p[-2];
      tmp[2] = p[-1];
      std::memcpy(tmp + 3, p, avail);
      std::memset(tmp + 3 + avail, ' ', 64 - avail);
      src = tmp + 3;
    }
    uint64_t sp, dg;
#ifdef FER_HAVE_SSE2
    Block blk{0, 0, tens_units + 64 * k, hundreds + 64 * k};
    if (kSimd) {
      block_sse2(src, blk);
      sp = blk.spaces;
      dg = blk.digits;
    } else
#endif
      masks_portable(src, sp, dg);
    uint64_t valid = avail == 64 ? ~uint64_t{0} : (uint64_t{1} << avail) - 1;
    const uint64_t other = ~(sp | dg) & valid;  // neither digit nor space: the field ends there
    bool last = k + 1 == blocks;
    if (other) {
      const int j = ctz64(other);
      valid = (uint64_t{1} << j) - 1;  // j < 64
      n = 64 * k + static_cast<size_t>(j);
      last = true;
    }
    sp &= valid;
    dg &= valid;
    bad |= sp & ((sp << 1) | (prev_sp >> 63));         // a space after a space: empty token
    bad |= dg & ((dg << 1) | (prev_dg >> 63)) & ((dg << 2) | (prev_dg >> 62)) &
           ((dg << 3) | (prev_dg >> 61));               // 4 digits in a row
    if (bad || n == 0) return false;  // from here on, the byte before every space is a digit
    prev_sp = sp << (63 - (avail - 1));  // keep the last valid bit at bit 63 (unused after the last block)
    prev_dg = dg << (63 - (avail - 1));
    if (count + 32 >= npix && count + popcount64(sp) >= npix) return false;  // too many tokens
    while (sp) {
      const int i = ctz64(sp);  // the token ends at byte i - 1
      sp &= sp - 1;
      uint32_t v;
#ifdef FER_HAVE_SSE2
      if (kSimd)
        v = blk.tens_units[i - 1] + 100u * blk.hundreds[i - 1];  // i - 1 >= -1: the block before
      else
#endif
        v = token_value(src + i - 1);
      acc |= v;
      out[count++] = static_cast<uint8_t>(v);
    }
    if (last) break;
  }
  if (!is_digit(static_cast<unsigned char>(b[n - 1]))) return false;  // trailing blank
  uint32_t v;
#ifdef FER_HAVE_SSE2
  if (kSimd)
    v = tens_units[n - 1] + 100u * hundreds[n - 1];
  else
#endif
    v = token_value(b + n - 1);
  acc |= v;
  out[count++] = static_cast<uint8_t>(v);
  *field_end = b + n;
  return (acc >> 8) == 0 && count == npix;
}

// Byte-at-a-time pixels parser: accepts any whitespace between tokens and words the error.
bool parse_pixels_slow(const char* b, const char* e, uint8_t* out, int64_t npix, std::string& err) {
  const char* p = b;
  int64_t count = 0;
  for (;;) {
    while (p < e && is_ws(static_cast<unsigned char>(*p))) ++p;
    if (p >= e) break;
    const char* t = p;
    unsigned v = 0;
    bool numeric = true;
    while (p < e && !is_ws(static_cast<unsigned char>(*p))) {
      unsigned char c = static_cast<unsigned char>(*p);
      if (is_digit(c))
        v = std::min(v * 10u + (c - '0'), 1000u);
      else
        numeric = false;
      ++p;
    }
    ++count;
    if (!numeric) {
      if (negative_integer(t, p))
        err = "pixels value " + std::to_string(count) + " is -" + display_digits(t + 1, p) + ", outside 0..255";
      else
        err = "pixels value " + std::to_string(count) + " is not an integer: " + display_quoted(t, p);
      return false;
    }
    if (v > 255) {
      err = "pixels value " + std::to_string(count) + " is " + display_digits(t, p) + ", outside 0..255";
      return false;
    }
    if (count <= npix) out[count - 1] = static_cast<uint8_t>(v);
  }
  if (count == 0) {
    err = "pixels is empty";
    return false;
  }
  if (count != npix) {
    err = "pixels has " + std::to_string(count) + " values, expected " + std::to_string(npix);
    return false;
  }
  return true;
}

bool parse_label(Field f, int num_classes, int64_t& label, std::string& err) {
  const char *b = f.b, *e = f.e;
  trim(b, e);
  if (b == e) {
    err = "emotion is empty";
    return false;
  }
  if (negative_integer(b, e)) {
    err = "emotion -" + display_digits(b + 1, e) + " is not a class label 0.." + std::to_string(num_classes - 1);
    return false;
  }
  if (!all_digits(b, e)) {
    err = "emotion " + display_quoted(b, e) + " is not an integer";
    return false;
  }
  unsigned v = digits_value(b, e);
  if (v >= static_cast<unsigned>(num_classes)) {
    err = "emotion " + display_digits(b, e) + " is not a class label 0.." + std::to_string(num_classes - 1);
    return false;
  }
  label = v;
  return true;
}

bool parse_usage(Field f, const std::vector<std::string>& usages, int8_t& code, std::string& err) {
  const char *b = f.b, *e = f.e;
  trim(b, e);
  if (b == e) {
    err = "Usage is empty";
    return false;
  }
  size_t n = static_cast<size_t>(e - b);
  for (size_t i = 0; i < usages.size(); ++i) {
    if (usages[i].size() == n && std::memcmp(usages[i].data(), b, n) == 0) {
      code = static_cast<int8_t>(i);
      return true;
    }
  }
  std::string names;
  for (size_t i = 0; i < usages.size(); ++i) names += (i ? ", " : "") + usages[i];
  err = "Usage " + display_quoted(b, e) + " is not one of " + names;
  return false;
}

// The fast path: one pass over a row in the common shape (no blanks around the fields, no
// doubled quotes, the pixels canonical; any field may be wrapped in quotes, as csv writers
// with QUOTE_ALL do). The pixels field's end is found by the pixels parser itself instead of
// a comma search. Returns false for anything else, and the caller runs the simple path,
// which gives the same values and words the errors.
template <bool kSimd>
bool parse_row_fast(const char* lo, const Line& ln, const CsvLayout& L, int64_t row, ParseOutput& out) {
  const char* p = ln.b;
  const char* const e = ln.e;
  const int64_t npix = static_cast<int64_t>(L.side) * L.side;
  std::string ignored;
  for (int c = 0; c < L.ncols; ++c) {
    const bool last_col = c + 1 == L.ncols;
    if (p >= e && !(last_col && p == e && c != L.pixels_col)) return false;
    const bool quoted = p < e && *p == '"';
    if (quoted) ++p;
    if (p < e && (*p == '"' || *p == ' ' || *p == '\t')) return false;
    const char* end;  // end of the field's content: the closing quote, ',' or e
    if (c == L.pixels_col) {
      if (!parse_pixels_fast<kSimd>(lo, p, e, out.images.get() + row * npix, npix, &end)) return false;
    } else {
      end = static_cast<const char*>(std::memchr(p, quoted ? '"' : ',', static_cast<size_t>(e - p)));
      if (!end) end = e;
      const Field f{p, end};
      if (c == L.label_col) {
        if (!parse_label(f, L.num_classes, out.labels[row], ignored)) return false;
      } else if (c == L.usage_col) {
        if (!parse_usage(f, L.usages, out.usage[row], ignored)) return false;
      }
    }
    if (quoted) {
      if (end == e || *end != '"') return false;
      ++end;
    }
    if (end < e && *end != ',') return false;
    if (last_col) {
      if (end != e) return false;  // more fields than the header
    } else {
      if (end == e) return false;  // fewer fields than the header
      p = end + 1;
    }
  }
  if (L.label_col < 0) out.labels[row] = -1;
  if (L.usage_col < 0) out.usage[row] = -1;
  return true;
}

// The simple path: the whole grammar, byte at a time; words the error of a bad row.
bool parse_row_slow(const Line& ln, const CsvLayout& L, int64_t row, ParseOutput& out, std::string& err) {
  Field fields[kMaxCols];
  int nf = 0;
  if (!split_fields(ln.b, ln.e, fields, L.ncols, nf, err)) return false;
  if (nf != L.ncols) {
    err = "has " + std::to_string(nf) + " fields, expected " + std::to_string(L.ncols);
    return false;
  }
  const int64_t npix = static_cast<int64_t>(L.side) * L.side;
  for (int c = 0; c < L.ncols; ++c) {
    if (c == L.pixels_col) {
      if (!parse_pixels_slow(fields[c].b, fields[c].e, out.images.get() + row * npix, npix, err)) return false;
    } else if (c == L.label_col) {
      if (!parse_label(fields[c], L.num_classes, out.labels[row], err)) return false;
    } else if (c == L.usage_col) {
      if (!parse_usage(fields[c], L.usages, out.usage[row], err)) return false;
    }
  }
  if (L.label_col < 0) out.labels[row] = -1;
  if (L.usage_col < 0) out.usage[row] = -1;
  return true;
}

bool parse_row(const char* lo, const Line& ln, const CsvLayout& L, int64_t row, ParseOutput& out,
               std::string& err) {
  switch (g_pixels_path.load(std::memory_order_relaxed)) {
    case PixelsPath::kSimd:
#ifdef FER_HAVE_SSE2
      if (parse_row_fast<true>(lo, ln, L, row, out)) return true;
      break;
#else
      [[fallthrough]];
#endif
    case PixelsPath::kScalar:
      if (parse_row_fast<false>(lo, ln, L, row, out)) return true;
      break;
    case PixelsPath::kSlow:
      break;
  }
  return parse_row_slow(ln, L, row, out, err);
}

struct Chunk {
  std::vector<Line> lines;  // lineno relative to the chunk's first line
  int64_t total_lines = 0;  // blank ones included
};

// Collects the lines that start in [cb, ce) (a line starts at data[0] or right after \n).
void scan_lines(const char* data, const char* end, const char* cb, const char* ce, Chunk& ch) {
  const char* p = cb;
  if (cb != data) {
    const char* nl = static_cast<const char*>(std::memchr(cb - 1, '\n', static_cast<size_t>(end - (cb - 1))));
    if (!nl) return;
    p = nl + 1;
  }
  while (p < ce) {
    const char* nl = static_cast<const char*>(std::memchr(p, '\n', static_cast<size_t>(end - p)));
    const char* le = nl ? nl : end;
    if (le > p && le[-1] == '\r') --le;
    const char* q = p;
    while (q < le && is_ws(static_cast<unsigned char>(*q))) ++q;
    if (q < le) ch.lines.push_back(Line{p, le, ch.total_lines});
    ++ch.total_lines;
    if (!nl) break;
    p = nl + 1;
  }
}

}  // namespace

void FreeDeleter::operator()(void* p) const noexcept { std::free(p); }

void set_pixels_path(PixelsPath path) { g_pixels_path.store(path); }

bool simd_available() {
#ifdef FER_HAVE_SSE2
  return true;
#else
  return false;
#endif
}

void* alloc_buffer(size_t bytes) {
  if (bytes == 0) bytes = 1;
#if defined(__linux__)
  constexpr size_t kHuge = size_t{2} << 20;
  if (bytes >= 4 * kHuge) {
    void* p = nullptr;
    if (posix_memalign(&p, kHuge, (bytes + kHuge - 1) / kHuge * kHuge) != 0) throw std::bad_alloc();
#ifdef MADV_HUGEPAGE
    madvise(p, (bytes + kHuge - 1) / kHuge * kHuge, MADV_HUGEPAGE);  // a hint; failure is harmless
#endif
    return p;
  }
#endif
  void* p = std::malloc(bytes);
  if (!p) throw std::bad_alloc();
  return p;
}

bool parse_csv(const char* data, size_t size, int64_t first_line, const CsvLayout& L, int threads,
               ParseOutput& out, ParseError& err) {
  err = ParseError{};
  if (L.ncols < 1 || L.ncols > kMaxCols || L.pixels_col < 0 || L.pixels_col >= L.ncols ||
      L.label_col >= L.ncols || L.usage_col >= L.ncols || L.side < 1 || L.side > 4096 ||
      L.num_classes < 1 || L.usages.size() > 127) {
    err.line = -1;
    err.message = "invalid CSV layout";
    return false;
  }
  const char* end = data + size;

  // Pass 1: line boundaries, in byte-range chunks.
  const int t1 = pick_threads(threads, static_cast<int64_t>(size), int64_t{8} << 20);
  std::vector<Chunk> chunks(t1);
  parallel_for(t1, t1, [&](int64_t b, int64_t e, int) {
    for (int64_t i = b; i < e; ++i) {
      const char* cb = data + size * static_cast<size_t>(i) / static_cast<size_t>(t1);
      const char* ce = data + size * static_cast<size_t>(i + 1) / static_cast<size_t>(t1);
      scan_lines(data, end, cb, ce, chunks[i]);
    }
  });
  std::vector<Line> lines;
  {
    size_t n = 0;
    for (auto& c : chunks) n += c.lines.size();
    lines.reserve(n);
    int64_t offset = first_line;
    for (auto& c : chunks) {
      for (auto& ln : c.lines) lines.push_back(Line{ln.b, ln.e, ln.lineno + offset});
      offset += c.total_lines;
      std::vector<Line>().swap(c.lines);
    }
  }

  // Pass 2: rows, in contiguous row ranges.
  const int64_t rows = static_cast<int64_t>(lines.size());
  const int64_t npix = static_cast<int64_t>(L.side) * L.side;
  out.rows = rows;
  out.images.reset(static_cast<uint8_t*>(alloc_buffer(static_cast<size_t>(rows * npix))));
  out.labels.reset(static_cast<int64_t*>(alloc_buffer(static_cast<size_t>(rows) * sizeof(int64_t))));
  out.usage.reset(static_cast<int8_t*>(alloc_buffer(static_cast<size_t>(rows))));

  const int t2 = pick_threads(threads, rows, 256);
  struct WorkerError {
    int64_t row = -1;
    std::string message;
  };
  std::vector<WorkerError> errors(t2);
  std::atomic<int64_t> first_bad{rows};
  parallel_for(rows, t2, [&](int64_t b, int64_t e, int w) {
    std::string msg;
    for (int64_t r = b; r < e; ++r) {
      if (r > first_bad.load(std::memory_order_relaxed)) return;  // an earlier row already failed
      if (!parse_row(data, lines[r], L, r, out, msg)) {
        errors[w].row = r;
        errors[w].message = std::move(msg);
        int64_t cur = first_bad.load();
        while (r < cur && !first_bad.compare_exchange_weak(cur, r)) {
        }
        return;
      }
    }
  });
  const WorkerError* worst = nullptr;
  for (auto& we : errors)
    if (we.row >= 0 && (!worst || we.row < worst->row)) worst = &we;
  if (worst) {
    err.line = lines[worst->row].lineno;
    err.message = worst->message;
    return false;
  }
  return true;
}

}  // namespace fer
