// st-eval: perplexity of a float or quantized checkpoint on token ids, and with --quant the KL
// divergence and top-1 agreement of a quantized checkpoint against its float model.

#include <cmath>
#include <cstdio>

#include <nlohmann/json.hpp>

#include "bin/common/cli.hpp"
#include "bin/common/json.hpp"
#include "bin/common/progress.hpp"
#include "libst/format/checkpoint.hpp"
#include "libst/shard/shard.hpp"
#include "libst/model/eval.hpp"
#include "libst/core/blas.hpp"
#include "libst/core/parallel.hpp"
#include "libst/data/tokens.hpp"

namespace {

using st::Result;
using st::model::Model;

// A directory of part{i}-of-{n}/ folders is merged back (st-shard's rules). The model is
// streamed: read layer by layer as the evaluation runs.
Result<std::unique_ptr<Model>> open_model(const std::string& path) {
  ST_ASSIGN(auto ck, st::Checkpoint::open(path));
  if (ck->layout() == st::Layout::parts) {
    ST_ASSIGN(ck, st::open_merged(path, st::cli::warn));
  }
  return Model::open(std::move(ck));
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Perplexity (next-token cross-entropy over each sequence's predicted positions) and tokens/s of a "
               "float or quantized checkpoint, running the arithmetic its files describe. With --quant, also the "
               "float model's perplexity, the KL divergence of the quantized model from it per position (mean, "
               "p99) and top-1 agreement",
               "st-eval"};
  std::string model_path, quant_path, data_path, tokenizer;
  int64_t samples = 0, seq_len = 0;
  bool json = false, kl = false, quiet = false;
  app.add_option("MODEL", model_path,
                 "checkpoint: .safetensors file, HF directory, quantized directory, or a directory of "
                 "part{i}-of-{n}/ tensor-parallel parts (merged on load)")
      ->required();
  app.add_option("--quant", quant_path, "quantized directory (or its parts) to judge against MODEL (the float model)");
  app.add_option("--data", data_path,
                 "token ids: *.jsonl (one {\"input_ids\": [...]} per line) or raw little-endian uint32;\n"
                 "or text: *.jsonl (one {\"text\": ...} per line) or *.txt (one document per line)")
      ->required()
      ->check(st::cli::not_stdin());
  app.add_option("--tokenizer", tokenizer, "tokenizer.json (or its directory) for text data (default: MODEL's)")
      ->check(st::cli::not_stdin());
  app.add_option("--samples", samples, "use the first N sequences (default: all)")->check(CLI::Range(int64_t(1), INT64_MAX));
  app.add_option("--seq-len", seq_len,
                 "tokens per sequence: cuts raw uint32 data (default 512), truncates JSONL ids, packs text\n"
                 "(st-tokenize --pack; default: one sequence per document)")
      ->check(CLI::Range(int64_t(2), int64_t(1) << 30));
  app.add_flag("--kl-divergence", kl, "report KL divergence and top-1 agreement (needs --quant; on by default with it)");
  st::cli::add_json_flag(app, json, "print one JSON object on stdout");
  st::cli::add_threads_option(app);
  st::cli::add_progress_option(app);
  st::cli::add_quiet_flag(app, quiet, "no progress on stderr");
  return st::cli::run(app, argc, argv, [&] {
    if (kl && quant_path.empty())
      return st::cli::report(st::make_error(st::Errc::usage, "--kl-divergence needs --quant QDIR"));
    if (seq_len == 0 && st::model::is_raw_ids_path(data_path)) seq_len = 512;
    auto data = st::model::load_tokens(
        data_path, {seq_len, samples, tokenizer.empty() ? st::model::model_tokenizer(model_path) : tokenizer, st::cli::warn});
    if (!data) return st::cli::report(data.error());
    st::cli::ProgressLine progress(quiet);
    auto model = open_model(model_path);
    if (!model) return st::cli::report(model.error());
    std::unique_ptr<Model> quant;
    if (!quant_path.empty()) {
      auto q = open_model(quant_path);
      if (!q) return st::cli::report(q.error());
      quant = std::move(q.value());
    }
    Model& judged = quant ? *quant : **model;
    Model* reference = quant ? model->get() : nullptr;

    auto r = st::model::evaluate(judged, *data, reference, progress.callback());
    progress.finish();
    if (!r) return st::cli::report(r.error());

    if (json) {
      nlohmann::ordered_json j;
      j["model"] = model_path;
      if (quant) j["quant"] = quant_path;
      j["data"] = data_path;
      j["sequences"] = r->sequences;
      j["tokens"] = r->tokens;
      j["predicted"] = r->predicted;
      j["perplexity"] = r->perplexity;
      j["nll"] = r->nll;
      j["seconds"] = r->seconds;
      j["tokens_per_second"] = r->tokens_per_second;
      j["forward_seconds"] = r->forward_seconds;
      j["forward_gflops"] = r->forward_flops / 1e9;
      j["forward_gflop_per_second"] = r->forward_seconds > 0 ? r->forward_flops / r->forward_seconds / 1e9 : 0.0;
      j["threads"] = st::threads();
      j["blas_core"] = st::blas_core();
      if (r->compared) {
        j["float_perplexity"] = r->reference_perplexity;
        j["perplexity_change_percent"] = 100.0 * (r->perplexity / r->reference_perplexity - 1.0);
        j["kl_mean"] = r->kl_mean;
        j["kl_p99"] = r->kl_p99;
        j["kl_max"] = r->kl_max;
        j["top1_agreement"] = r->top1_agreement;
      }
      st::cli::print_json(j);
      return st::cli::kExitOk;
    }
    std::printf("model            %s\n", model_path.c_str());
    if (quant) std::printf("quantized        %s\n", quant_path.c_str());
    std::printf("data             %s: %lld sequences, %lld tokens, %lld predicted\n", data_path.c_str(),
                static_cast<long long>(r->sequences), static_cast<long long>(r->tokens),
                static_cast<long long>(r->predicted));
    if (r->compared) {
      std::printf("float perplexity %.6f\n", r->reference_perplexity);
      std::printf("perplexity       %.6f  (%+.3f%%)\n", r->perplexity,
                  100.0 * (r->perplexity / r->reference_perplexity - 1.0));
      std::printf("KL divergence    mean %.6f  p99 %.6f  max %.6f\n", r->kl_mean, r->kl_p99, r->kl_max);
      std::printf("top-1 agreement  %.4f%%\n", 100.0 * r->top1_agreement);
    } else {
      std::printf("perplexity       %.6f\n", r->perplexity);
    }
    std::printf("tokens/s         %.1f\n", r->tokens_per_second);
    return st::cli::kExitOk;
  });
}
