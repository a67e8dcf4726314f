// The weight-file writer thread and the plan's text files.
#include "libst/quant/quant_writer.hpp"

#include <cstring>

#include "libst/format/description.hpp"
#include "libst/format/output.hpp"

namespace st {
namespace {
// Bytes handed to the writer but not yet written (owned buffers and mapped input pages).
constexpr uint64_t kInFlightCap = 160ull << 20;
}  // namespace

Owned make_owned(size_t n) { return std::make_shared<Bytes>(n); }

Owned owned_copy(const void* p, size_t n) {
  Owned b = make_owned(n);
  if (n) std::memcpy(b->data(), p, n);
  return b;
}

Piece piece(std::string name, Owned owned) {
  Piece p;
  p.name = std::move(name);
  p.data = owned->data();
  p.size = owned->size;
  p.owned = std::move(owned);
  return p;
}

WeightWriter::WeightWriter(const std::vector<PlannedFile>& files, const std::string& dir) {
  for (const auto& f : files) files_.push_back({f.name == "-" ? "-" : dir + "/" + f.name, &f});
  thread_ = std::thread([this] { run(); });
}

WeightWriter::~WeightWriter() {
  if (!thread_.joinable()) return;
  {
    std::lock_guard<std::mutex> lock(m_);
    closing_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

Status WeightWriter::push(Job job) {
  std::unique_lock<std::mutex> lock(m_);
  space_.wait(lock, [&] { return failed_ || in_flight_ == 0 || in_flight_ + job.bytes <= kInFlightCap; });
  if (failed_) return error_;
  in_flight_ += job.bytes;
  queue_.push_back(std::move(job));
  cv_.notify_all();
  return Status{};
}

Status WeightWriter::finish(bool complete) {
  {
    std::lock_guard<std::mutex> lock(m_);
    closing_ = true;
  }
  cv_.notify_all();
  thread_.join();
  if (failed_) return error_;
  while (complete && next_file_ < files_.size()) {
    ST_CHECK(open_next());
    ST_CHECK(close_current());
  }
  return Status{};
}

Status WeightWriter::open_next() {
  const File& f = files_[next_file_++];
  ST_ASSIGN(writer_, SafetensorsWriter::create(f.path, f.plan->specs, f.plan->metadata, WriterOptions{}));
  written_ = 0;
  return Status{};
}

Status WeightWriter::close_current() {
  Status s = writer_->finish();
  writer_.reset();
  return s;
}

Status WeightWriter::write(const Piece& p) {
  if (!writer_) ST_CHECK(open_next());
  ST_CHECK(writer_->write(p.name, p.data, p.size));
  if (++written_ == files_[next_file_ - 1].plan->specs.size()) ST_CHECK(close_current());
  return Status{};
}

void WeightWriter::run() {
  for (;;) {
    Job job;
    {
      std::unique_lock<std::mutex> lock(m_);
      cv_.wait(lock, [&] { return closing_ || !queue_.empty(); });
      if (queue_.empty()) return;
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    if (!failed_) {
      for (const Piece& p : job.pieces) {
        Status s = write(p);
        if (!s) {
          std::lock_guard<std::mutex> lock(m_);
          error_ = std::move(s);
          failed_ = true;
          break;
        }
      }
    }
    if (job.after) job.after();
    {
      std::lock_guard<std::mutex> lock(m_);
      in_flight_ -= job.bytes;
    }
    space_.notify_all();
  }
}

Status write_plan_texts(const QuantPlan& plan, const Checkpoint& input, const std::string& dir) {
  ST_CHECK(write_file(dir + "/" + kDescriptionFile, plan.description));
  for (const auto& [name, text] : plan.side_files) ST_CHECK(write_file(dir + "/" + name, text, input.side_file_mode(name)));
  if (!plan.index.empty()) ST_CHECK(write_file(dir + "/" + plan.index_name, plan.index));
  return Status{};
}

}  // namespace st
