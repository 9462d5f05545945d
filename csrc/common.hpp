// Small shared helpers for the fer_edge._native kernels: the SIMD switch, byte classes and a
// minimal parallel-for over index ranges (std::thread, no global pool).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <thread>
#include <vector>

// SSE2 is part of every x86-64 target (and of 32-bit x86 built for it). Everywhere else
// (aarch64 included) the kernels use their portable C++ loops. Detected here, once.
#if defined(__SSE2__) || defined(_M_X64) || (defined(_M_IX86_FP) && _M_IX86_FP >= 2)
#define FER_HAVE_SSE2 1
#endif

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

// Calls f(begin, end, worker) on `threads` contiguous slices of [0, n); worker 0 runs on the
// calling thread. An exception thrown by f (std::bad_alloc, say) does not end the process:
// every slice still runs to its end or its own exception, all threads are joined, and then
// the exception of the lowest-numbered failing worker is rethrown to the caller. A thread
// that cannot be started (std::system_error) has its slice run on the calling thread.
template <class F>
void parallel_for(int64_t n, int threads, F&& f) {
  if (n <= 0) return;
  if (threads <= 1 || n == 1) {
    f(int64_t{0}, n, 0);
    return;
  }
  if (threads > n) threads = static_cast<int>(n);
  std::vector<std::exception_ptr> errors(static_cast<size_t>(threads));
  auto run = [&](int w) noexcept {
    try {
      f(n * w / threads, n * (w + 1) / threads, w);
    } catch (...) {
      errors[static_cast<size_t>(w)] = std::current_exception();
    }
  };
  std::vector<std::thread> pool;
  pool.reserve(static_cast<size_t>(threads - 1));
  int started = 1;
  for (; started < threads; ++started) {
    try {
      pool.emplace_back([&run, started] { run(started); });
    } catch (...) {
      break;  // no more threads: the remaining slices run here
    }
  }
  for (int w = started; w < threads; ++w) run(w);
  run(0);
  for (auto& t : pool) t.join();
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
}

}  // namespace fer
