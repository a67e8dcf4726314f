// st-quant-w8a8: quantize a float checkpoint to W8A8 (static) or W8A8_DYNAMIC, MindIE layout.
#include <cctype>
#include <cstdio>

#include <nlohmann/json.hpp>

#include "bin/common/cli.hpp"
#include "bin/common/json.hpp"
#include "bin/common/progress.hpp"
#include "bin/common/scheme_flags.hpp"
#include "bin/common/static_flags.hpp"
#include "libst/format/checkpoint.hpp"
#include "libst/arch/architecture.hpp"
#include "libst/quant/quant_plan.hpp"
#include "libst/quant/quantize.hpp"
#include "libst/format/stats.hpp"

namespace {

// "2G", "512MiB", "1000000" -> bytes; 0 on a malformed size.
uint64_t parse_size(const std::string& s) {
  size_t i = 0;
  uint64_t v = 0;
  while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) {
    if (v > (UINT64_MAX - 9) / 10) return 0;
    v = v * 10 + static_cast<uint64_t>(s[i++] - '0');
  }
  if (i == 0) return 0;
  std::string unit = s.substr(i);
  for (auto& c : unit) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  uint64_t mul = 1;
  if (unit.empty() || unit == "B") mul = 1;
  else if (unit == "K" || unit == "KB" || unit == "KIB") mul = 1ull << 10;
  else if (unit == "M" || unit == "MB" || unit == "MIB") mul = 1ull << 20;
  else if (unit == "G" || unit == "GB" || unit == "GIB") mul = 1ull << 30;
  else if (unit == "T" || unit == "TB" || unit == "TIB") mul = 1ull << 40;
  else return 0;
  if (v > UINT64_MAX / mul) return 0;
  return v * mul;
}

// "N linears W8A8, M W8A8_DYNAMIC, K float; X MB in, Y MB out -> OUT" on stderr.
void print_summary(const st::QuantizeSummary& r, const std::string& output) {
  std::string types;
  for (const auto& [type, n] : r.linears_by_type)
    types += (types.empty() ? "" : ", ") + std::to_string(n) + (types.empty() ? " linears " : " ") + type;
  if (types.empty()) types = "0 linears " + r.model_quant_type;
  std::fprintf(stderr, "%s: %s, %zu float; %.1f MB in, %.1f MB out%s%s\n", st::cli::tool_name().c_str(),
               types.c_str(), r.linears_float, r.input_bytes / 1e6, r.output_bytes / 1e6, output == "-" ? "" : " -> ",
               output == "-" ? "" : output.c_str());
}

// --json: what was written, on stdout.
nlohmann::ordered_json summary_json(const st::QuantizeSummary& r, const std::string& output) {
  nlohmann::ordered_json j;
  j["output"] = output;
  j["model_quant_type"] = r.model_quant_type;
  j["linears"] = r.linears_by_type;
  j["linears_float"] = r.linears_float;
  j["input_bytes"] = r.input_bytes;
  j["output_bytes"] = r.output_bytes;
  j["files"] = r.files;
  return j;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Quantize a float checkpoint to W8A8 (static, with --stats) or W8A8_DYNAMIC (--dynamic) in the "
               "MindIE / vllm-ascend layout: int8 weights with per-row scales; every other tensor copied",
               "st-quant-w8a8"};
  std::string model, stats_path, output, max_size;
  std::vector<std::string> float_globs;
  bool dynamic = false, force = false, quiet = false, fa_quant = false, json = false;
  app.add_option("MODEL", model, "float checkpoint: .safetensors file, HF directory, or - for a stream on stdin")
      ->required();
  app.add_option("--stats", stats_path,
                 "activation statistics from st-calibrate (static W8A8; with --dynamic, for --fa-quant and static rules)")
      ->check(st::cli::not_stdin());
  app.add_flag("--dynamic", dynamic,
               "W8A8_DYNAMIC (per-token activations) for every linear no rule names; no statistics needed");
  app.add_option("--float", float_globs,
                 "keep linears whose prefix or weight name matches GLOB float (repeatable; a fused group "
                 "q/k/v or gate/up follows any of its members)")
      ->type_name("GLOB");
  st::cli::SchemeFlags scheme_flags;
  st::cli::add_scheme_flags(app, scheme_flags, "W8A8, W8A8_DYNAMIC or FLOAT");
  st::cli::add_json_flag(app, json, "print a JSON summary of what was written on stdout (with --dry-run: the plan)");
  st::cli::add_output_option(app, output, "output directory, or - for a safetensors stream on stdout", /*required=*/false);
  st::cli::add_force_flag(app, force);
  st::cli::add_threads_option(app);
  st::cli::add_progress_option(app);
  app.add_option("--max-file-size", max_size,
                 "split the weights into numbered files of at most SIZE bytes (suffix K, M, G) with an index")
      ->type_name("SIZE");
  app.add_flag("--fa-quant", fa_quant,
               "also quantize attention: per-head q/k/v scales from the statistics (FAQuant; DeepSeek MLA: "
               "FAKQuant); needs --stats");
  std::string fa_stat = "absmax";
  int fa_fallback = 0;
  auto* fa_stat_opt = app.add_option("--fa-stat", fa_stat,
                 "with --fa-quant: absmax (the default) or recall (q and k from msModelSlim's 0.9999 recall "
                 "window, v from the absmax)")
      ->check(CLI::IsMember({"recall", "absmax"}));
  auto* fa_fallback_opt = app.add_option("--fa-fallback", fa_fallback,
                 "with --fa-quant: keep attention float in the N layers whose int8 q/k/v are estimated worst "
                 "(msModelSlim's fa_amp)")
      ->check(CLI::NonNegativeNumber);
  st::cli::StaticFlags static_flags;  // static only
  st::cli::add_static_flags(app, static_flags);
  st::cli::add_quiet_flag(app, quiet);
  return st::cli::run(app, argc, argv, [&] {
    auto rules = st::cli::scheme_rules(scheme_flags, static_flags, fa_quant);
    if (!rules) return st::cli::report(rules.error());
    const bool dry_run = scheme_flags.dry_run;
    if (!dynamic && stats_path.empty() && rules->empty() && !dry_run)
      return st::cli::report(st::make_error(st::Errc::usage, "give --stats STATS (static W8A8) or --dynamic"));
    if (output.empty() && !dry_run)
      return st::cli::report(st::make_error(st::Errc::usage, "give -o OUTPUT (or --dry-run)"));
    if (auto both = st::cli::json_and_stream(json && !dry_run, output); !both) return st::cli::report(both.error());
    st::QuantizeOptions o;
    o.mode = dynamic ? st::W8A8Mode::w8a8_dynamic : st::W8A8Mode::w8a8_static;
    o.float_globs = float_globs;
    o.scheme_rules = *rules;
    o.fa_quant = fa_quant;
    if (scheme_flags.recipe_fa_stat && !fa_stat_opt->count()) fa_stat = *scheme_flags.recipe_fa_stat;
    if (scheme_flags.recipe_fa_fallback && !fa_fallback_opt->count()) fa_fallback = *scheme_flags.recipe_fa_fallback;
    st::parse_fa_stat(fa_stat, o.fa_stat);
    o.fa_fallback = fa_fallback;
    if (fa_fallback > 0 && !fa_quant)
      return st::cli::report(st::make_error(st::Errc::usage, "--fa-fallback goes with --fa-quant"));
    if (!max_size.empty()) {
      o.max_file_size = parse_size(max_size);
      if (o.max_file_size == 0)
        return st::cli::report(st::make_error(st::Errc::usage, "--max-file-size: not a size: '" + max_size + "'"));
    }
    if (output == "-" && o.max_file_size > 0)
      return st::cli::report(st::make_error(st::Errc::usage, "--max-file-size needs a directory output"));
    std::unique_ptr<st::Output> out;
    if (!dry_run) {
      auto opened = st::cli::open_output({output, /*stream=*/true, force, {model, stats_path, scheme_flags.recipe}, {}});
      if (!opened) return st::cli::report(opened.error());
      out = std::move(*opened);
      o.output = out.get();
    }
    st::ActivationStats stats;
    if (fa_quant && stats_path.empty() && !dry_run)
      return st::cli::report(st::make_error(st::Errc::usage, "--fa-quant needs --stats STATS (attention statistics)"));
    if (!stats_path.empty()) {
      auto s = st::load_stats(stats_path);
      if (!s) return st::cli::report(s.error());
      stats = std::move(s.value());
      o.stats = &stats;
      o.stats_path = stats_path;
    }
    // Accuracy methods (static linears only): defaults search smoothing + auto range.
    if (dynamic && rules->empty() && static_flags.given())
      return st::cli::report(st::make_error(st::Errc::usage,
                                            "--anti-outlier, --act-method and --fallback are for static W8A8 (--stats)"));
    auto prep_opts = st::cli::static_prep_options(static_flags);
    if (!prep_opts) return st::cli::report(prep_opts.error());
    if (prep_opts->smooth && model == "-") {
      if (static_flags.anti_outlier_opt->count())
        return st::cli::report(st::make_error(st::Errc::usage, "--anti-outlier needs a file or directory input "
                                                                "(it reads weights twice), not a stream"));
      prep_opts->smooth = false;  // the default quietly degrades for a one-pass stream
    }
    st::Checkpoint::Options copts;
    copts.random_access = (!dynamic || !rules->empty()) && (prep_opts->smooth || static_flags.fallback > 0);
    auto ckpt = st::Checkpoint::open(model, copts);  // a stream is read once, in order, unless smoothing
    if (!ckpt) return st::cli::report(ckpt.error());
    auto arch = st::Architecture::of(**ckpt);
    if (!arch) return st::cli::report(arch.error());
    auto schemes = st::choose_schemes(*arch, o, (*ckpt)->path());
    if (!schemes) return st::cli::report(schemes.error());
    if (dry_run) {
      if (fa_quant && fa_fallback > 0) {  // name the attention blocks that would stay float
        if (!o.stats)
          return st::cli::report(st::make_error(st::Errc::usage, "--dry-run --fa-fallback needs --stats STATS"));
        auto fa = st::attention_scales(*arch, stats, stats_path, o.fa_stat, fa_fallback);
        if (!fa) return st::cli::report(fa.error());
        for (const auto& b : fa->blocks)
          if (!b.quantized) schemes->notes.push_back(st::fallback_note(b));
      }
      const auto types = st::checkpoint_types(*arch, schemes->by_prefix(), st::scheme_of_mode(o.mode), fa_quant);
      st::cli::print_scheme_plan(*schemes, types, json);
      return st::cli::kExitOk;
    }
    st::cli::ProgressLine progress(quiet);
    prep_opts->progress = progress.callback();
    st::StaticPrep prep;
    if (schemes->any_static() && o.stats) {
      prep_opts->static_groups = schemes->static_groups();
      auto p = st::prepare_static(**ckpt, *arch, stats, *prep_opts);
      if (!p) return st::cli::report(p.error());
      prep = std::move(*p);
      prep.attach(o);
    }
    o.progress = progress.callback();
    o.warn = st::cli::warn;
    auto r = st::quantize_w8a8(**ckpt, o);
    progress.finish();
    if (!r) return st::cli::report(r.error());
    st::cli::print_static_notes(prep.notes, quiet, static_flags);
    if (!quiet) print_summary(*r, output);
    if (json) st::cli::print_json(summary_json(*r, output));
    return st::cli::kExitOk;
  });
}
