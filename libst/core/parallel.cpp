// The thread count and the parallel loops, over std::thread; the BLAS follows the count.
#include "libst/core/parallel.hpp"

#include <algorithm>
#include <thread>
#include <vector>

extern "C" void openblas_set_num_threads(int);

namespace st {

namespace {
int g_threads = 0;
thread_local bool t_serial = false;
}

void set_threads(int n) {
  g_threads = n > 0 ? n : int(std::max(1u, std::thread::hardware_concurrency()));
  openblas_set_num_threads(g_threads);
}

int threads() {
  if (g_threads == 0) set_threads(0);
  return g_threads;
}

void parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn, int64_t min_chunk) {
  const int64_t t = t_serial ? 1 : std::min<int64_t>(threads(), std::max<int64_t>(1, n / std::max<int64_t>(1, min_chunk)));
  if (t <= 1) {
    if (n > 0) fn(0, n);
    return;
  }
  std::vector<std::thread> pool;
  const int64_t step = (n + t - 1) / t;
  for (int64_t i = 1; i < t; ++i) {
    const int64_t b = i * step, e = std::min(n, b + step);
    if (b < e) pool.emplace_back(fn, b, e);
  }
  fn(0, std::min(n, step));
  for (auto& th : pool) th.join();
}

int for_each_item(int64_t n, const std::function<void(int, int64_t)>& fn) {
  const int workers = t_serial ? 1 : int(std::min<int64_t>(threads(), n));
  if (workers <= 1) {
    for (int64_t i = 0; i < n; ++i) fn(0, i);
    return 1;
  }
  openblas_set_num_threads(1);
  std::vector<std::thread> pool;
  for (int w = 0; w < workers; ++w)
    pool.emplace_back([&, w] {
      t_serial = true;
      for (int64_t i = w; i < n; i += workers) fn(w, i);
    });
  for (auto& th : pool) th.join();
  openblas_set_num_threads(g_threads);
  return workers;
}

}  // namespace st
