// Threads: the one thread count (a tool's -j) for every parallel loop in libst and for the BLAS,
// and the two loops that use it, both on one pool of persistent threads (a thread keeps its
// thread-local caches from one loop to the next).
#pragma once

#include <cstdint>
#include <functional>

namespace st {

// Sets the thread count of every loop below and of the BLAS; n <= 0 means all cores (the
// default when nothing sets it). A tool calls it once, from its -j option.
void set_threads(int n);
int threads();

// Runs fn(begin, end) over [0, n) split into contiguous chunks, at most threads() of them and
// none shorter than min_chunk; the calling thread takes part. Runs inline when the work is too
// small for two chunks, on one thread, inside another loop (a chunk or a for_each_item
// worker), or while another thread's loop holds the pool. The chunk boundaries depend on the
// thread count: a caller whose result would depend on them (a floating-point sum) loops over
// fixed blocks instead and combines them in order.
void parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn, int64_t min_chunk = 1);

// Runs fn(worker, i) for every i in [0, n) on min(threads(), n) workers, item i on worker
// i % workers (a fixed assignment, so per-worker results merge deterministically for a given
// thread count). Inside, each worker runs single-threaded (parallel_for inline, BLAS on one
// thread): whole items in parallel need no fine-grained synchronisation, which matters on a
// loaded machine. With one worker, fn runs on the calling thread with the normal threading.
// Returns the number of workers that ran at once (1 when it had to run inline).
int for_each_item(int64_t n, const std::function<void(int, int64_t)>& fn);

}  // namespace st
