// Fused face preprocessing for inference: crop, BGR->gray, resize, normalise.
#pragma once

#include <cstdint>
#include <string>

namespace fer {

// A read-only view of an 8-bit image with arbitrary byte strides (numpy's).
struct ImageView {
  const uint8_t* data;
  int64_t height, width;
  int channels;  // 1 (gray) or 3 (BGR)
  int64_t stride_y, stride_x, stride_c;
};

// One face: crop [x0, x0+w) x [y0, y0+h) (already clipped to the image, w, h >= 1), to gray
// exactly as cv2.cvtColor(COLOR_BGR2GRAY) does for uint8, resized to size x size exactly as
// cv2.resize on the float32 crop does (INTER_AREA when the crop is larger than `size` in both
// dimensions, INTER_LINEAR otherwise), then (v - mean) / std in float32. Writes size*size
// floats to out.
void preprocess_face(const ImageView& img, int64_t x0, int64_t y0, int64_t w, int64_t h, int size,
                     float mean, float std, float* out);

}  // namespace fer
