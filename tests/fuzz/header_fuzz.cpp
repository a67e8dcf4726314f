// Fuzz target: a safetensors file. The bytes go through the stream reader (every tensor read),
// the mapped reader (from a memfd) and, when the header parses, a serialise / parse round trip.
// Anything may be refused; nothing may crash, hang, leak or allocate what was only declared.
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "libst/format/safetensors.hpp"

namespace {

void stream(const uint8_t* data, size_t size) {
  FILE* in = fmemopen(const_cast<uint8_t*>(data), size, "rb");
  if (!in) return;
  if (auto r = st::StreamReader::open(in, "<fuzz>")) {
    std::vector<uint8_t> buf;
    for (;;) {
      auto t = (*r)->next(buf);
      if (!t || !*t) break;
    }
  }
  std::fclose(in);
}

void mapped(const uint8_t* data, size_t size) {
  const int fd = memfd_create("fuzz", MFD_CLOEXEC);
  if (fd < 0) return;
  if (write(fd, data, size) == static_cast<ssize_t>(size)) {
    if (auto f = st::SafetensorsFile::open("/proc/self/fd/" + std::to_string(fd))) {
      uint64_t sum = 0;
      for (const auto& t : (*f)->header().tensors) {
        const st::ByteView v = (*f)->data(t);
        for (size_t i = 0; i < v.size; i += 4096) sum += v.data[i];  // touch every page
      }
      if (sum == 0xfeedface) std::abort();  // keeps the reads
    }
  }
  close(fd);
}

// A parsed header serialises to text that parses to the same tensors and metadata.
void round_trip(const uint8_t* data, size_t size) {
  if (size < 8) return;
  const std::string text(reinterpret_cast<const char*>(data) + 8, size - 8);
  auto h = st::parse_header(text, std::nullopt);
  if (!h) return;
  const std::string again = st::serialize_header(h->tensors, h->metadata);
  auto h2 = st::parse_header(again, h->buffer_bytes);
  if (!h2 || h2->tensors.size() != h->tensors.size() || h2->metadata != h->metadata) std::abort();
  for (size_t i = 0; i < h->tensors.size(); ++i) {
    const auto &a = h->tensors[i], &b = h2->tensors[i];
    if (a.name != b.name || a.dtype != b.dtype || a.shape != b.shape || a.begin != b.begin || a.end != b.end) std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  stream(data, size);
  mapped(data, size);
  round_trip(data, size);
  return 0;
}
