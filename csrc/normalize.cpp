#include "normalize.hpp"

#include <cmath>
#include <vector>

#include "common.hpp"

#ifdef FER_HAVE_SSE2
#include <emmintrin.h>
#endif

namespace fer {
namespace {

void sums(const uint8_t* p, size_t n, uint64_t& s_out, uint64_t& q_out) {
  uint64_t s = 0, q = 0;
  size_t i = 0;
#ifdef FER_HAVE_SSE2
  const __m128i zero = _mm_setzero_si128();
  // Each 32-bit lane of qacc gains at most 2 * 255^2 * 2 per 16 bytes; flush every 4096 blocks.
  while (n - i >= 16) {
    size_t blocks = std::min<size_t>((n - i) / 16, 4096);
    __m128i sacc = zero, qacc = zero;
    for (size_t k = 0; k < blocks; ++k, i += 16) {
      __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i));
      sacc = _mm_add_epi64(sacc, _mm_sad_epu8(v, zero));
      __m128i lo = _mm_unpacklo_epi8(v, zero), hi = _mm_unpackhi_epi8(v, zero);
      qacc = _mm_add_epi32(qacc, _mm_madd_epi16(lo, lo));
      qacc = _mm_add_epi32(qacc, _mm_madd_epi16(hi, hi));
    }
    alignas(16) uint64_t s2[2];
    alignas(16) uint32_t q4[4];
    _mm_store_si128(reinterpret_cast<__m128i*>(s2), sacc);
    _mm_store_si128(reinterpret_cast<__m128i*>(q4), qacc);
    s += s2[0] + s2[1];
    q += uint64_t{q4[0]} + q4[1] + q4[2] + q4[3];
  }
#endif
  for (; i < n; ++i) {
    uint64_t v = p[i];
    s += v;
    q += v * v;
  }
  s_out = s;
  q_out = q;
}

}  // namespace

MeanStd mean_std_u8(const uint8_t* data, size_t n, int threads) {
  const int t = pick_threads(threads, static_cast<int64_t>(n), int64_t{4} << 20);
  std::vector<uint64_t> s(t, 0), q(t, 0);
  parallel_for(static_cast<int64_t>(n), t, [&](int64_t b, int64_t e, int w) {
    sums(data + b, static_cast<size_t>(e - b), s[w], q[w]);
  });
  uint64_t S = 0, Q = 0;
  for (int w = 0; w < t; ++w) {
    S += s[w];
    Q += q[w];
  }
  const double dn = static_cast<double>(n);
#if defined(__SIZEOF_INT128__)
  unsigned __int128 num = static_cast<unsigned __int128>(n) * Q - static_cast<unsigned __int128>(S) * S;
  const double var = static_cast<double>(num) / (dn * dn);
#else
  const long double ln = static_cast<long double>(n);
  const double var = static_cast<double>((ln * static_cast<long double>(Q) -
                                          static_cast<long double>(S) * static_cast<long double>(S)) /
                                         (ln * ln));
#endif
  return MeanStd{static_cast<double>(S) / dn, std::sqrt(var < 0 ? 0.0 : var)};
}

void normalize_u8(const uint8_t* src, size_t n, double mean, double std, float* dst, int threads) {
  float lut[256];
  for (int v = 0; v < 256; ++v) lut[v] = static_cast<float>((v - mean) / std);
  const int t = pick_threads(threads, static_cast<int64_t>(n), int64_t{1} << 21);
  parallel_for(static_cast<int64_t>(n), t, [&](int64_t b, int64_t e, int) {
    for (int64_t i = b; i < e; ++i) dst[i] = lut[src[i]];
  });
}

}  // namespace fer
