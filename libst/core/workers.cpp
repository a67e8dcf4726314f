// Workers: a fixed set of threads taking loop items from a shared counter.
#include "libst/core/workers.hpp"

namespace st {

Workers::Workers(int n) {
  for (int i = 1; i < n; ++i) threads_.emplace_back([this] { loop(); });
}

Workers::~Workers() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  for (auto& t : threads_) t.join();
}

void Workers::take_items() {
  std::unique_lock<std::mutex> lock(mu_);
  while (next_ < count_) {
    const size_t i = next_++;
    lock.unlock();
    (*fn_)(i);
    lock.lock();
    if (++finished_ == count_) done_.notify_all();
  }
}

void Workers::loop() {
  uint64_t seen = 0;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      wake_.wait(lock, [&] { return stop_ || round_ != seen; });
      if (stop_) return;
      seen = round_;
    }
    take_items();
  }
}

void Workers::run(size_t count, const std::function<void(size_t)>& fn) {
  if (count == 0) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    fn_ = &fn;
    count_ = count;
    next_ = finished_ = 0;
    ++round_;
  }
  wake_.notify_all();
  take_items();
  std::unique_lock<std::mutex> lock(mu_);
  done_.wait(lock, [&] { return finished_ == count_; });
}

}  // namespace st
