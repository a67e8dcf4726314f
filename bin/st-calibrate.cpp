// st-calibrate: run the float model on calibration token ids and write activation statistics
// (per linear input; per attention block) as a safetensors file, see st-calibrate(1).
#include <unistd.h>

#include <chrono>
#include <cstdio>

#include "bin/common/cli.hpp"
#include "bin/common/progress.hpp"
#include "libst/format/checkpoint.hpp"
#include "libst/model/calibrate.hpp"
#include "libst/data/tokens.hpp"

int main(int argc, char** argv) {
  CLI::App app{"Run a float model on calibration token ids and write activation statistics for quantization: per "
               "decoder linear input min, max, per-channel absmax and sum of squares, token count; per attention "
               "block per-head absmax of q, k, v (MLA: absorbed q and the KV latent). Format: st-calibrate(1)",
               "st-calibrate"};
  std::string model_path, data_path, output, tokenizer;
  int64_t samples = 0, seq_len = 0;
  bool force = false, quiet = false;
  app.add_option("MODEL", model_path, "float checkpoint: .safetensors file or HF directory")->required();
  app.add_option("--data", data_path,
                 "token ids: *.jsonl (one {\"input_ids\": [...]} per line) or raw little-endian uint32 (with --seq-len);\n"
                 "or text: *.jsonl (one {\"text\": ...} per line) or *.txt (one document per line)")
      ->required();
  app.add_option("--tokenizer", tokenizer, "tokenizer.json (or its directory) for text data (default: MODEL's)");
  app.add_option("--samples", samples, "use the first N sequences (default: all)")->check(CLI::Range(int64_t(1), INT64_MAX));
  app.add_option("--seq-len", seq_len,
                 "tokens per sequence: required for raw uint32 data; truncates JSONL ids; packs text (st-tokenize --pack)")
      ->check(CLI::Range(int64_t(2), int64_t(1) << 30));
  app.add_option("-o,--output", output, "statistics file to write (.safetensors)")->required();
  app.add_flag("-f,--force", force, "replace an existing output file");
  st::cli::add_threads_option(app);
  st::cli::add_progress_option(app);
  app.add_flag("-q,--quiet", quiet, "no progress or summary on stderr");
  return st::cli::run(app, argc, argv, [&] {
    if (seq_len == 0 && st::model::is_raw_ids_path(data_path))
      return st::cli::report(st::make_error(st::Errc::usage, "raw uint32 token data needs --seq-len", data_path));
    auto out = st::cli::open_output({output, /*stream=*/true, force, {model_path, data_path}, {}});
    if (!out) return st::cli::report(out.error());
    auto data = st::model::load_tokens(
        data_path, {seq_len, samples, tokenizer.empty() ? st::model::model_tokenizer(model_path) : tokenizer});
    if (!data) return st::cli::report(data.error());
    auto ck = st::Checkpoint::open(model_path);
    if (!ck) return st::cli::report(ck.error());
    if ((*ck)->description())
      return st::cli::report(st::make_error(st::Errc::usage, "calibrate the float model, not a quantized one", model_path));
    st::cli::ProgressLine progress(quiet);
    auto model = st::model::Model::load(**ck, progress.callback());
    if (!model) return st::cli::report(model.error());

    const auto start = std::chrono::steady_clock::now();
    auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); };
    auto stats = st::model::calibrate(**model, *data, progress.callback());
    progress.finish();
    if (!stats) return st::cli::report(stats.error());
    auto saved = st::save_stats(*stats, (*out)->file());
    if (saved) saved = (*out)->commit();
    if (!saved) return st::cli::report(saved.error());
    if (!quiet)
      std::fprintf(stderr, "%s: %zu samples, %lld tokens, %zu linears, %zu attention tensors in %.1f s -> %s\n",
                   st::cli::tool_name().c_str(), data->seqs.size(), static_cast<long long>(data->total_tokens()),
                   stats->linears.size(), stats->extra.size(), elapsed(), output.c_str());
    return st::cli::kExitOk;
  });
}
