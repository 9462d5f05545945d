// Exact mean/std of uint8 pixels and normalisation to float32.
#pragma once

#include <cstddef>
#include <cstdint>

namespace fer {

struct MeanStd {
  double mean;
  double std;  // population standard deviation
};

// Sum and sum of squares accumulated in 64-bit integers, so the result does not depend on
// the order or the number of threads: mean = S/n, var = (n*Q - S^2) / n^2 (numerator in
// 128-bit where the compiler has it).
MeanStd mean_std_u8(const uint8_t* data, size_t n, int threads);

// dst[i] = float((src[i] - mean) / std), the division done in double: a 256-entry table.
void normalize_u8(const uint8_t* src, size_t n, double mean, double std, float* dst, int threads);

}  // namespace fer
