// Fused face preprocessing. The resize reproduces OpenCV's cv::resize for float32 input
// operation for operation (imgproc/src/resize.cpp: resizeAreaFast_, ResizeArea_Invoker with
// computeResizeAreaTab, and resizeGeneric_ with HResizeLinear/VResizeLinear), so the result
// equals cv2.resize(gray.astype(np.float32), ...) up to float rounding order; the tests check
// it against cv2 itself. Built with -ffp-contract=off so no FMA changes the rounding.
#include "preprocess.hpp"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <vector>

namespace fer {
namespace {

struct DecimateAlpha {
  int si, di;
  float alpha;
};

// cv::computeResizeAreaTab for one channel.
int compute_area_tab(int ssize, int dsize, double scale, DecimateAlpha* tab) {
  int k = 0;
  for (int dx = 0; dx < dsize; dx++) {
    double fsx1 = dx * scale;
    double fsx2 = fsx1 + scale;
    double cell = std::min(scale, ssize - fsx1);
    int sx1 = static_cast<int>(std::ceil(fsx1)), sx2 = static_cast<int>(std::floor(fsx2));
    sx2 = std::min(sx2, ssize - 1);
    sx1 = std::min(sx1, sx2);
    if (sx1 - fsx1 > 1e-3) tab[k++] = DecimateAlpha{sx1 - 1, dx, static_cast<float>((sx1 - fsx1) / cell)};
    for (int sx = sx1; sx < sx2; sx++) tab[k++] = DecimateAlpha{sx, dx, static_cast<float>(1.0 / cell)};
    if (fsx2 - sx2 > 1e-3)
      tab[k++] = DecimateAlpha{sx2, dx, static_cast<float>(std::min(std::min(fsx2 - sx2, 1.), cell) / cell)};
  }
  return k;
}

// Integer scale in both directions: cv::resizeAreaFast_ (block sums are exact in float for
// blocks below 2^24 / 255 pixels, so the summation order does not matter).
void resize_area_fast(const float* src, int sw, int iscale_x, int iscale_y, int dw, int dh, float* dst) {
  const float scale = 1.f / static_cast<float>(iscale_x * iscale_y);
  for (int dy = 0; dy < dh; ++dy) {
    for (int dx = 0; dx < dw; ++dx) {
      float sum = 0.f;
      for (int sy = 0; sy < iscale_y; ++sy) {
        const float* S = src + static_cast<size_t>(dy * iscale_y + sy) * sw + static_cast<size_t>(dx) * iscale_x;
        for (int sx = 0; sx < iscale_x; ++sx) sum += S[sx];
      }
      dst[static_cast<size_t>(dy) * dw + dx] = sum * scale;
    }
  }
}

// Fractional downscale: cv::ResizeArea_Invoker over the whole image.
void resize_area(const float* src, int sw, int sh, int dw, int dh, double scale_x, double scale_y, float* dst) {
  std::vector<DecimateAlpha> xtab(static_cast<size_t>(sw) * 2), ytab(static_cast<size_t>(sh) * 2);
  const int xn = compute_area_tab(sw, dw, scale_x, xtab.data());
  const int yn = compute_area_tab(sh, dh, scale_y, ytab.data());
  std::vector<float> buf(dw), sum(dw, 0.f);
  int prev_dy = ytab[0].di;
  for (int j = 0; j < yn; ++j) {
    const float beta = ytab[j].alpha;
    const int dy = ytab[j].di;
    const float* S = src + static_cast<size_t>(ytab[j].si) * sw;
    std::fill(buf.begin(), buf.end(), 0.f);
    for (int k = 0; k < xn; ++k) buf[xtab[k].di] += S[xtab[k].si] * xtab[k].alpha;
    if (dy != prev_dy) {
      float* D = dst + static_cast<size_t>(prev_dy) * dw;
      for (int dx = 0; dx < dw; ++dx) {
        D[dx] = sum[dx];
        sum[dx] = beta * buf[dx];
      }
      prev_dy = dy;
    } else {
      for (int dx = 0; dx < dw; ++dx) sum[dx] += beta * buf[dx];
    }
  }
  float* D = dst + static_cast<size_t>(prev_dy) * dw;
  for (int dx = 0; dx < dw; ++dx) D[dx] = sum[dx];
}

// Bilinear with half-pixel centres: cv::resizeGeneric_ with ksize 2 on float.
void resize_linear(const float* src, int sw, int sh, int dw, int dh, double scale_x, double scale_y, float* dst) {
  std::vector<int> xofs(dw);
  std::vector<float> alpha(static_cast<size_t>(dw) * 2);
  int xmax = dw;
  for (int dx = 0; dx < dw; ++dx) {
    float fx = static_cast<float>((dx + 0.5) * scale_x - 0.5);
    int sx = static_cast<int>(std::floor(fx));
    fx -= static_cast<float>(sx);
    if (sx < 0) fx = 0.f, sx = 0;
    if (sx + 1 >= sw) {
      xmax = std::min(xmax, dx);
      if (sx >= sw - 1) fx = 0.f, sx = sw - 1;
    }
    xofs[dx] = sx;
    alpha[2 * dx] = 1.f - fx;
    alpha[2 * dx + 1] = fx;
  }
  std::vector<float> row0(dw), row1(dw);
  auto hresize = [&](const float* S, float* D) {
    int dx = 0;
    for (; dx < xmax; ++dx) {
      const int sx = xofs[dx];
      D[dx] = S[sx] * alpha[2 * dx] + S[sx + 1] * alpha[2 * dx + 1];
    }
    for (; dx < dw; ++dx) D[dx] = S[xofs[dx]];
  };
  auto clip = [](int y, int n) { return y >= 0 ? (y < n ? y : n - 1) : 0; };
  for (int dy = 0; dy < dh; ++dy) {
    float fy = static_cast<float>((dy + 0.5) * scale_y - 0.5);
    int sy = static_cast<int>(std::floor(fy));
    fy -= static_cast<float>(sy);
    const float b0 = 1.f - fy, b1 = fy;
    // Rows are clipped, the weights are not (as in OpenCV): at the borders both taps read the
    // same row, and row*b0 + row*b1 may differ from row in the last bit.
    hresize(src + static_cast<size_t>(clip(sy, sh)) * sw, row0.data());
    hresize(src + static_cast<size_t>(clip(sy + 1, sh)) * sw, row1.data());
    float* D = dst + static_cast<size_t>(dy) * dw;
    for (int dx = 0; dx < dw; ++dx) D[dx] = row0[dx] * b0 + row1[dx] * b1;
  }
}

}  // namespace

void preprocess_face(const ImageView& img, int64_t x0, int64_t y0, int64_t w, int64_t h, int size,
                     float mean, float std, float* out) {
  const int sw = static_cast<int>(w), sh = static_cast<int>(h);
  std::vector<float> gray(static_cast<size_t>(sw) * sh);
  for (int y = 0; y < sh; ++y) {
    const uint8_t* row = img.data + (y0 + y) * img.stride_y + x0 * img.stride_x;
    float* g = gray.data() + static_cast<size_t>(y) * sw;
    if (img.channels == 1) {
      for (int x = 0; x < sw; ++x) g[x] = row[x * img.stride_x];
    } else {
      const int64_t sc = img.stride_c;
      for (int x = 0; x < sw; ++x) {
        const uint8_t* p = row + x * img.stride_x;
        // cv::cvtColor(COLOR_BGR2GRAY) on uint8 in OpenCV 4.x: fixed point with 15 fractional
        // bits (BY15, GY15, RY15 in color.hpp), rounded. The older 14-bit constants
        // (1868, 9617, 4899) differ from it for about 0.2% of colours.
        const int v = (p[0] * 3735 + p[sc] * 19235 + p[2 * sc] * 9798 + (1 << 14)) >> 15;
        g[x] = static_cast<float>(v);
      }
    }
  }
  const int n = size;
  const double inv_x = static_cast<double>(n) / sw, inv_y = static_cast<double>(n) / sh;
  const double scale_x = 1. / inv_x, scale_y = 1. / inv_y;
  if (sw > n && sh > n) {  // INTER_AREA
    const int ix = static_cast<int>(std::nearbyint(scale_x)), iy = static_cast<int>(std::nearbyint(scale_y));
    if (std::abs(scale_x - ix) < DBL_EPSILON && std::abs(scale_y - iy) < DBL_EPSILON)
      resize_area_fast(gray.data(), sw, ix, iy, n, n, out);
    else
      resize_area(gray.data(), sw, sh, n, n, scale_x, scale_y, out);
  } else if (sw == n && sh == n) {  // cv::resize copies when the size does not change
    std::copy(gray.begin(), gray.end(), out);
  } else {  // INTER_LINEAR
    resize_linear(gray.data(), sw, sh, n, n, scale_x, scale_y, out);
  }
  const size_t total = static_cast<size_t>(n) * n;
  for (size_t i = 0; i < total; ++i) out[i] = (out[i] - mean) / std;
}

}  // namespace fer
