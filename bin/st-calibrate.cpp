// st-calibrate: run the float model on calibration token ids and write activation statistics
// (per linear input; per attention block) as a safetensors file, or merge the statistics of the
// parts of one run (--part i/n on several hosts, then --merge), see st-calibrate(1).
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include <nlohmann/json.hpp>

#include "bin/common/cli.hpp"
#include "bin/common/json.hpp"
#include "bin/common/progress.hpp"
#include "libst/data/tokens.hpp"
#include "libst/format/checkpoint.hpp"
#include "libst/format/stats_merge.hpp"
#include "libst/model/calibrate.hpp"

namespace {

struct Options {
  std::string model_path, data_path, output, tokenizer, part;
  std::vector<std::string> merge;
  int64_t samples = 0, seq_len = 0;
  bool force = false, quiet = false, json = false;
};

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Writes the statistics and moves them to their final name (the calibrate and merge tails).
st::Status save_committed(const st::ActivationStats& stats, st::Output& out) {
  ST_CHECK(st::save_stats(stats, out.file()));
  return out.commit();
}

// --json: what was written (the caller adds the samples and the part or merge).
nlohmann::ordered_json summary_json(const Options& o, const st::ActivationStats& stats, double seconds) {
  nlohmann::ordered_json j;
  j["output"] = o.output;
  j["linears"] = stats.linears.size();
  j["attention_tensors"] = stats.extra.size();
  j["seconds"] = std::round(seconds * 10) / 10;
  return j;
}

int calibrate(const Options& o) {
  if (o.model_path.empty() || o.data_path.empty())
    return st::cli::report(st::make_error(st::Errc::usage, "MODEL and --data are required (or --merge)"));
  if (o.seq_len == 0 && st::model::is_raw_ids_path(o.data_path))
    return st::cli::report(st::make_error(st::Errc::usage, "raw uint32 token data needs --seq-len", o.data_path));
  st::StatsPart part;
  if (!o.part.empty()) {
    auto p = st::parse_stats_part(o.part);
    if (!p) return st::cli::report(p.error());
    part = *p;
  }
  if (auto both = st::cli::json_and_stream(o.json, o.output); !both) return st::cli::report(both.error());
  auto out = st::cli::open_output({o.output, /*stream=*/true, o.force, {o.model_path, o.data_path}, {}});
  if (!out) return st::cli::report(out.error());
  auto data = st::model::load_tokens(
      o.data_path, {o.seq_len, o.samples, o.tokenizer.empty() ? st::model::model_tokenizer(o.model_path) : o.tokenizer,
                    st::cli::warn});
  if (!data) return st::cli::report(data.error());
  if (part.count > 0)
    if (auto cut = st::model::select_part(*data, part); !cut) return st::cli::report(cut.error());
  auto ck = st::Checkpoint::open(o.model_path);
  if (!ck) return st::cli::report(ck.error());
  if ((*ck)->description())
    return st::cli::report(st::make_error(st::Errc::usage, "calibrate the float model, not a quantized one", o.model_path));
  st::cli::ProgressLine progress(o.quiet);
  auto model = st::model::Model::open(std::move(*ck));  // layer by layer: one layer's weights in memory
  if (!model) return st::cli::report(model.error());

  const auto start = std::chrono::steady_clock::now();
  auto stats = st::model::calibrate(**model, *data, progress.callback());
  progress.finish();
  if (!stats) return st::cli::report(stats.error());
  if (auto saved = save_committed(*stats, **out); !saved) return st::cli::report(saved.error());
  const double seconds = seconds_since(start);
  if (!o.quiet)
    std::fprintf(stderr, "%s: %s%zu samples, %lld tokens, %zu linears, %zu attention tensors in %.1f s -> %s\n",
                 st::cli::tool_name().c_str(), part.count ? ("part " + o.part + ": ").c_str() : "",
                 data->seqs.size(), static_cast<long long>(data->total_tokens()), stats->linears.size(),
                 stats->extra.size(), seconds, o.output.c_str());
  if (o.json) {
    auto j = summary_json(o, *stats, seconds);
    if (part.count) j["part"] = o.part;
    j["samples"] = data->seqs.size();
    j["tokens"] = data->total_tokens();
    st::cli::print_json(j);
  }
  return st::cli::kExitOk;
}

int merge(const Options& o) {
  if (!o.model_path.empty() || !o.data_path.empty() || !o.part.empty())
    return st::cli::report(st::make_error(st::Errc::usage, "--merge takes statistics files only: no MODEL, --data or --part"));
  if (auto both = st::cli::json_and_stream(o.json, o.output); !both) return st::cli::report(both.error());
  auto out = st::cli::open_output({o.output, /*stream=*/true, o.force, o.merge, {}});
  if (!out) return st::cli::report(out.error());
  const auto start = std::chrono::steady_clock::now();
  auto stats = st::merge_stats_parts(o.merge);
  if (!stats) return st::cli::report(stats.error());
  if (auto saved = save_committed(*stats, **out); !saved) return st::cli::report(saved.error());
  const double seconds = seconds_since(start);
  if (!o.quiet)
    std::fprintf(stderr, "%s: merged %zu parts: %s samples, %zu linears, %zu attention tensors in %.1f s -> %s\n",
                 st::cli::tool_name().c_str(), o.merge.size(), stats->metadata["st.stats.samples"].c_str(),
                 stats->linears.size(), stats->extra.size(), seconds, o.output.c_str());
  if (o.json) {
    auto j = summary_json(o, *stats, seconds);
    j["merged_parts"] = o.merge.size();
    j["samples"] = std::atoll(stats->metadata["st.stats.samples"].c_str());
    st::cli::print_json(j);
  }
  return st::cli::kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Run a float model on calibration token ids and write activation statistics for quantization: per "
               "decoder linear input min, max, per-channel absmax and sum of squares, token count; per attention "
               "block per-head absmax of q, k, v (MLA: absorbed q and the KV latent). --part i/n calibrates one "
               "slice of the data; --merge combines the parts' statistics into one run's. Format: st-calibrate(1)",
               "st-calibrate"};
  Options o;
  app.add_option("MODEL", o.model_path, "float checkpoint: .safetensors file or HF directory");
  app.add_option("--data", o.data_path,
                 "token ids: *.jsonl (one {\"input_ids\": [...]} per line) or raw little-endian uint32 (with --seq-len);\n"
                 "or text: *.jsonl (one {\"text\": ...} per line) or *.txt (one document per line)")
      ->check(st::cli::not_stdin());
  app.add_option("--tokenizer", o.tokenizer, "tokenizer.json (or its directory) for text data (default: MODEL's)")
      ->check(st::cli::not_stdin());
  app.add_option("--samples", o.samples, "use the first N sequences (default: all)")->check(CLI::Range(int64_t(1), INT64_MAX));
  app.add_option("--seq-len", o.seq_len,
                 "tokens per sequence: required for raw uint32 data; truncates JSONL ids; packs text (st-tokenize --pack)")
      ->check(CLI::Range(int64_t(2), int64_t(1) << 30));
  app.add_option("--part", o.part, "calibrate the i-th of n contiguous slices of the sequences (i from 1 to n), for --merge");
  app.add_option("--merge", o.merge, "combine the statistics of parts 1/n ... n/n (any order) into one run's")
      ->expected(1, -1)
      ->check(st::cli::not_stdin());
  st::cli::add_output_option(app, o.output, "statistics file to write (.safetensors), or - for stdout");
  st::cli::add_force_flag(app, o.force);
  st::cli::add_threads_option(app);
  st::cli::add_progress_option(app);
  st::cli::add_json_flag(app, o.json, "print a JSON summary of what was written on stdout");
  st::cli::add_quiet_flag(app, o.quiet);
  return st::cli::run(app, argc, argv, [&] { return o.merge.empty() ? calibrate(o) : merge(o); });
}
