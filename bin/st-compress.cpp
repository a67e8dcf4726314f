// st-compress: compress W8A8S weights per tensor-parallel rank into W8A8SC, and back (-d).
#include <cstdio>
#include <string>

#include <nlohmann/json.hpp>

#include "bin/common/cli.hpp"
#include "bin/common/json.hpp"
#include "bin/common/progress.hpp"
#include "libst/w8a8sc/compress.hpp"

namespace {

struct Options {
  std::string in, out;
  bool decompress = false, force = false, json = false, quiet = false, allow_bf16 = false;
  int level = 3;
};

nlohmann::ordered_json to_json(const st::w8a8sc::DirSummary& s, bool decompress) {
  nlohmann::ordered_json j;
  j["mode"] = decompress ? "decompress" : "compress";
  j["parts"] = s.parts;
  j["weights"] = s.tensors.size();
  j["raw_bytes"] = s.raw_bytes;
  j["compressed_bytes"] = s.compressed_bytes;
  j["ratio"] = s.raw_bytes ? static_cast<double>(s.compressed_bytes) / static_cast<double>(s.raw_bytes) : 0.0;
  auto& list = j["tensors"] = nlohmann::ordered_json::array();
  for (const auto& t : s.tensors) {
    nlohmann::ordered_json e;
    e["part"] = t.part;
    e["name"] = t.name;
    e["shape"] = {t.n, t.k};
    e["raw_bytes"] = t.raw_bytes;
    e["compressed_bytes"] = t.compressed_bytes;
    e["ratio"] = t.raw_bytes ? static_cast<double>(t.compressed_bytes) / static_cast<double>(t.raw_bytes) : 0.0;
    e["sparsity"] = t.raw_bytes ? 1.0 - static_cast<double>(t.nonzeros) / static_cast<double>(t.raw_bytes) : 0.0;
    list.push_back(std::move(e));
  }
  return j;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "Compress the W8A8S weights of part{i}-of-{n}/ folders (or one W8A8S directory) into W8A8SC with the\n"
      "st-tile codec (see st-compress(1) for the bitstream); -d restores the W8A8S parts bit for bit.",
      "st-compress"};
  Options o;
  app.add_option("DIR", o.in, "W8A8S parts directory (or W8A8SC with -d), or one quantized directory")
      ->required()
      ->check(st::cli::not_stdin());
  st::cli::add_output_option(app, o.out, "output directory (same layout as DIR); not - (a directory is no stream)");
  app.add_flag("-d,--decompress", o.decompress, "restore W8A8S from W8A8SC");
  st::cli::add_force_flag(app, o.force);
  app.add_flag("--allow-bf16", o.allow_bf16,
               "compress a bfloat16 model although MindIE's W8A8SC linear refuses bf16 (refused by default)");
  app.add_option("--level", o.level, "zstd level for the entropy-coded sections (default 3)")->check(CLI::Range(1, 22));
  st::cli::add_threads_option(app);
  st::cli::add_progress_option(app);
  st::cli::add_json_flag(app, o.json, "print a JSON summary (per weight: shape, bytes, ratio, sparsity) on stdout");
  st::cli::add_quiet_flag(app, o.quiet);
  return st::cli::run(app, argc, argv, [&] {
    st::w8a8sc::DirOptions d;
    d.codec.zstd_level = o.level;
    d.allow_bf16 = o.allow_bf16;
    auto out = st::cli::open_output({o.out, /*stream=*/false, o.force, {o.in}, {}});
    if (!out) return st::cli::report(out.error());
    st::cli::ProgressLine progress(o.quiet);
    d.progress = progress.callback();
    auto s = o.decompress ? st::w8a8sc::decompress_dir(o.in, **out, d) : st::w8a8sc::compress_dir(o.in, **out, d);
    progress.finish();
    if (!s) return st::cli::report(s.error());
    if (!o.quiet)
      std::fprintf(stderr, "%s: %s %zu weights in %d part%s: %llu int8 bytes %s %llu bytes (%.3f)\n",
                   st::cli::tool_name().c_str(), o.decompress ? "restored" : "compressed", s->tensors.size(),
                   s->parts ? s->parts : 1, s->parts == 1 || s->parts == 0 ? "" : "s",
                   static_cast<unsigned long long>(s->raw_bytes), o.decompress ? "from" : "->",
                   static_cast<unsigned long long>(s->compressed_bytes),
                   s->raw_bytes ? static_cast<double>(s->compressed_bytes) / static_cast<double>(s->raw_bytes) : 0.0);
    if (o.json) st::cli::print_json(to_json(*s, o.decompress));
    return st::cli::kExitOk;
  });
}
