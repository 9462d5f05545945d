// Small shared helpers for the fer_edge._native kernels: byte classes and a
// minimal parallel-for over index ranges (std::thread, no global pool).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <thread>
#include <vector>

namespace fer {

// Whitespace inside a CSV line, the same set as Python's bytes.split():
// space, \t, \n, \v, \f, \r.
inline bool is_ws(unsigned char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }
inline bool is_digit(unsigned char c) { return static_cast<unsigned>(c - '0') < 10u; }

// Threads to use for `work` items when each worker should get at least `min_per_thread`
// of them. `requested` <= 0 means "as many as the machine has" (capped at 16).
inline int pick_threads(int requested, int64_t work, int64_t min_per_thread) {
  int hw = static_cast<int>(std::thread::hardware_concurrency());
  if (hw <= 0) hw = 1;
  int t = requested > 0 ? requested : std::min(hw, 16);
  int64_t by_work = min_per_thread > 0 ? work / min_per_thread : work;
  if (by_work < 1) by_work = 1;
  if (t > by_work) t = static_cast<int>(by_work);
  return std::max(t, 1);
}

// Calls f(begin, end, worker) on `threads` contiguous slices of [0, n); worker 0 runs on
// the calling thread. f must not throw (record errors instead).
template <class F>
void parallel_for(int64_t n, int threads, F&& f) {
  if (n <= 0) return;
  if (threads <= 1 || n == 1) {
    f(int64_t{0}, n, 0);
    return;
  }
  if (threads > n) threads = static_cast<int>(n);
  std::vector<std::thread> pool;
  pool.reserve(threads - 1);
  for (int w = 1; w < threads; ++w) {
    int64_t b = n * w / threads, e = n * (w + 1) / threads;
    pool.emplace_back([&f, b, e, w] { f(b, e, w); });
  }
  f(int64_t{0}, n / threads, 0);
  for (auto& t : pool) t.join();
}

}  // namespace fer
