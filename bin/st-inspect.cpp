// st-inspect: list, summarise and diff safetensors checkpoints and quant descriptions.
#include "bin/common/cli.hpp"
#include "libst/checkpoint.hpp"

int main(int argc, char** argv) {
  CLI::App app{"List the tensors of a checkpoint", "st-inspect"};
  std::string path;
  app.add_option("PATH", path, "checkpoint: file, directory or - for stdin")->required();
  return st::cli::run(app, argc, argv, [&] {
    auto ckpt = st::Checkpoint::open(path);
    if (!ckpt) return st::cli::report(ckpt.error());
    for (const auto& e : (*ckpt)->tensors()) std::printf("%s\n", e.name().c_str());
    return 0;
  });
}
