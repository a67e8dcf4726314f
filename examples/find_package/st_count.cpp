// st-count PATH: counts the tensors, parameters and bytes of any checkpoint libst opens; a
// program outside the tree that uses the installed library (tests/cli/install.sh builds it).
#include <cstdint>
#include <cstdio>

#include "libst/format/checkpoint.hpp"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: st-count PATH\n");
    return 2;
  }
  auto checkpoint = st::Checkpoint::open(argv[1]);
  if (!checkpoint) {
    std::fprintf(stderr, "st-count: %s\n", checkpoint.error().str().c_str());
    return 2;
  }
  uint64_t parameters = 0, bytes = 0;
  for (const auto& t : (*checkpoint)->tensors()) {
    parameters += t.info->numel();
    bytes += t.info->nbytes();
  }
  std::printf("%s: %zu tensors, %llu parameters, %llu bytes\n", st::layout_name((*checkpoint)->layout()),
              (*checkpoint)->tensors().size(), static_cast<unsigned long long>(parameters),
              static_cast<unsigned long long>(bytes));
  return 0;
}
