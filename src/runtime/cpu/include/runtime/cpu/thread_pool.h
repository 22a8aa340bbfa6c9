// A small fixed-size thread pool for the CPU backend: parallel_for over an index range, the caller
// taking part. One pool per model; not re-entrant (a task must not call parallel_for on the same
// pool) and one parallel_for at a time. OpenBLAS keeps its own threads for its GEMMs; ops run
// either BLAS or this pool, never both at once, so the cores are not oversubscribed.
//
// A decode step issues a few hundred short parallel_for calls back to back, so waking sleeping
// workers through a condition variable each time (tens of microseconds) would cost a noticeable
// share of the step. Workers therefore spin briefly on an atomic job counter after each job
// before they block, and the caller spins (then yields) while the last chunks finish.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace nanoflow::cpu {

class ThreadPool {
 public:
  // num_threads <= 0: std::thread::hardware_concurrency(). The caller counts as one thread.
  explicit ThreadPool(int num_threads = 0);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int num_threads() const { return static_cast<int>(workers_.size()) + 1; }

  // Calls fn(begin, end) over disjoint chunks covering [0, n); blocks until all are done. The
  // first exception thrown by a chunk is rethrown here (after every chunk has finished).
  void parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn);

 private:
  void worker_loop(int index);
  void run_chunks(int index);

  std::vector<std::thread> workers_;
  std::mutex mu_;                 // guards sleeping: cv_ waits and stop_
  std::condition_variable cv_;
  // Current job: written by the caller before generation_ is bumped (release), read by workers
  // after they see the new generation (acquire).
  const std::function<void(int64_t, int64_t)>* fn_ = nullptr;
  int64_t n_ = 0;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};   // workers still running the current job
  std::atomic<bool> stop_{false};
  std::mutex error_mu_;
  std::exception_ptr error_;
};

// Runs serially when pool is null or the range has one element.
inline void parallel_for(ThreadPool* pool, int64_t n, const std::function<void(int64_t, int64_t)>& fn) {
  if (pool == nullptr || n <= 1) {
    if (n > 0) fn(0, n);
    return;
  }
  pool->parallel_for(n, fn);
}

// The pool when `work` (roughly: scalar operations) is worth splitting, else null (serial):
// below ~32K operations the hand-off costs more than it saves.
inline ThreadPool* pool_for(ThreadPool* pool, int64_t work, int64_t min_work = int64_t{1} << 15) {
  return work >= min_work ? pool : nullptr;
}

}  // namespace nanoflow::cpu
