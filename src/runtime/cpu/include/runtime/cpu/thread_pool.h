// A small fixed-size thread pool for the CPU backend: parallel_for over an index range, the caller
// taking part. One pool per model; not re-entrant (a task must not call parallel_for on the same
// pool). OpenBLAS keeps its own threads for GEMMs; ops run either BLAS or this pool, never both at
// once, so the cores are not oversubscribed.
#pragma once
#include <condition_variable>
#include <cstdint>
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
  std::mutex mu_;
  std::condition_variable cv_start_;
  std::condition_variable cv_done_;
  // Current job (guarded by mu_; read by workers after they observe a new generation).
  const std::function<void(int64_t, int64_t)>* fn_ = nullptr;
  int64_t n_ = 0;
  uint64_t generation_ = 0;
  int pending_ = 0;
  bool stop_ = false;
  std::exception_ptr error_;
};

// Convenience: runs serially when pool is null.
inline void parallel_for(ThreadPool* pool, int64_t n, const std::function<void(int64_t, int64_t)>& fn) {
  if (pool == nullptr || n <= 1) {
    if (n > 0) fn(0, n);
    return;
  }
  pool->parallel_for(n, fn);
}

}  // namespace nanoflow::cpu
