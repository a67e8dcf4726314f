// st-quant-w8a8: quantize a float checkpoint to W8A8 (static) or W8A8_DYNAMIC, MindIE layout.
#include <unistd.h>

#include <cctype>
#include <cstdio>

#include "bin/common/cli.hpp"
#include "libst/checkpoint.hpp"
#include "libst/architecture.hpp"
#include "libst/quant/act_range.hpp"
#include "libst/quant/fallback.hpp"
#include "libst/quant/quantize.hpp"
#include "libst/quant/smooth.hpp"
#include "libst/stats.hpp"

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

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Quantize a float checkpoint to W8A8 (static, with --stats) or W8A8_DYNAMIC (--dynamic) in the "
               "MindIE / vllm-ascend layout: int8 weights with per-row scales; every other tensor copied",
               "st-quant-w8a8"};
  std::string model, stats_path, output, max_size;
  std::vector<std::string> float_globs;
  bool dynamic = false, force = false, quiet = false, fa_quant = false;
  int threads = 0;
  app.add_option("MODEL", model, "float checkpoint: .safetensors file, HF directory, or - for a stream on stdin")
      ->required();
  auto* stats_opt = app.add_option("--stats", stats_path, "activation statistics from st-calibrate (static W8A8)");
  auto* dyn_opt = app.add_flag("--dynamic", dynamic, "W8A8_DYNAMIC: per-token activation quantization, no statistics");
  stats_opt->excludes(dyn_opt);
  app.add_option("--float", float_globs,
                 "keep linears whose prefix or weight name matches GLOB float (repeatable; a fused group "
                 "q/k/v or gate/up follows any of its members)")
      ->type_name("GLOB");
  app.add_option("-o,--output", output, "output directory, or - for a safetensors stream on stdout")->required();
  app.add_flag("-f,--force", force, "replace an existing output directory");
  app.add_option("-j,--threads", threads, "worker threads (default: all cores)")->check(CLI::Range(0, 1024));
  app.add_option("--max-file-size", max_size,
                 "split the weights into numbered files of at most SIZE bytes (suffix K, M, G) with an index")
      ->type_name("SIZE");
  app.add_flag("--fa-quant", fa_quant,
               "also quantize attention: per-head q/k/v scales from the statistics (FAQuant; DeepSeek MLA: "
               "FAKQuant); needs --stats");
  std::string anti_outlier = "default", act_method = "default";
  int fallback = 0;
  app.add_option("--anti-outlier", anti_outlier,
                 "static only: none, smoothquant[:ALPHA] (fold per-channel scales into the q/k/v and gate/up "
                 "norms), smoothquant-all[:ALPHA] (also down_proj's input into up_proj's rows), or search (both, "
                 "alpha chosen per pair from the statistics; the default)")
      ->type_name("METHOD");
  app.add_option("--act-method", act_method,
                 "static only: activation range from minmax (calibration min/max), percentile[:P] or mse (clip "
                 "to minimise the estimated output error), or auto (mse, never worse than minmax by the "
                 "estimate; the default)")
      ->type_name("METHOD");
  app.add_option("--fallback", fallback, "static only: keep float the N linears (fused groups) whose quantization "
                                         "error is estimated largest, named on stderr (default 0)")
      ->check(CLI::Range(0, 1 << 20));
  app.add_flag("-q,--quiet", quiet, "no summary on stderr");
  return st::cli::run(app, argc, argv, [&] {
    if (!dynamic && stats_path.empty())
      return st::cli::report(st::make_error(st::Errc::usage, "give --stats STATS (static W8A8) or --dynamic"));
    st::QuantizeOptions o;
    o.mode = dynamic ? st::W8A8Mode::w8a8_dynamic : st::W8A8Mode::w8a8_static;
    o.float_globs = float_globs;
    o.output = output;
    o.force = force;
    o.threads = threads;
    o.fa_quant = fa_quant;
    if (!max_size.empty()) {
      o.max_file_size = parse_size(max_size);
      if (o.max_file_size == 0)
        return st::cli::report(st::make_error(st::Errc::usage, "--max-file-size: not a size: '" + max_size + "'"));
    }
    if (output == "-" && isatty(1))
      return st::cli::report(st::make_error(st::Errc::usage, "refusing to write a safetensors stream to a terminal"));
    if (output == "-" && o.max_file_size > 0)
      return st::cli::report(st::make_error(st::Errc::usage, "--max-file-size needs a directory output"));
    st::ActivationStats stats;
    if (fa_quant && stats_path.empty())
      return st::cli::report(st::make_error(st::Errc::usage, "--fa-quant needs --stats STATS (attention statistics)"));
    if (!stats_path.empty()) {
      auto s = st::load_stats(stats_path);
      if (!s) return st::cli::report(s.error());
      stats = std::move(s.value());
      o.stats = &stats;
      o.stats_path = stats_path;
    }
    // Accuracy methods (static only): defaults search smoothing + auto range.
    const bool explicit_ao = anti_outlier != "default", explicit_am = act_method != "default";
    if (dynamic && (explicit_ao || explicit_am || fallback > 0))
      return st::cli::report(st::make_error(st::Errc::usage,
                                            "--anti-outlier, --act-method and --fallback are for static W8A8 (--stats)"));
    st::SmoothOptions sopt;
    bool do_smooth = !dynamic;
    if (anti_outlier == "default") anti_outlier = "search";
    {
      const auto colon = anti_outlier.find(':');
      const std::string name = anti_outlier.substr(0, colon);
      if (colon != std::string::npos) {
        char* end = nullptr;
        const std::string a = anti_outlier.substr(colon + 1);
        sopt.alpha = std::strtof(a.c_str(), &end);
        if (a.empty() || *end || !(sopt.alpha >= 0 && sopt.alpha <= 1) || name == "none" || name == "search")
          return st::cli::report(st::make_error(st::Errc::usage, "--anti-outlier: bad alpha in '" + anti_outlier +
                                                                     "' (smoothquant[:ALPHA], 0 <= ALPHA <= 1)"));
      }
      if (name == "none") do_smooth = false;
      else if (name == "smoothquant") sopt.up_down = false;
      else if (name == "smoothquant-all") sopt.up_down = true;
      else if (name == "search") sopt.search = true;
      else
        return st::cli::report(st::make_error(
            st::Errc::usage, "--anti-outlier: unknown method '" + anti_outlier +
                                 "' (none, smoothquant[:ALPHA], smoothquant-all[:ALPHA], search)"));
    }
    sopt.keep_latent = fa_quant;
    if (do_smooth && model == "-") {
      if (explicit_ao)
        return st::cli::report(st::make_error(st::Errc::usage, "--anti-outlier needs a file or directory input "
                                                                "(it reads weights twice), not a stream"));
      do_smooth = false;  // the default quietly degrades for a one-pass stream
    }
    if (act_method == "default") act_method = "auto";
    st::ActMethod am;
    if (!st::parse_act_method(act_method, am))
      return st::cli::report(
          st::make_error(st::Errc::usage, "--act-method: unknown method '" + act_method + "' (minmax, mse, auto)"));
    st::Checkpoint::Options copts;
    copts.random_access = do_smooth || fallback > 0;  // a stream is read once, in order
    auto ckpt = st::Checkpoint::open(model, copts);
    if (!ckpt) return st::cli::report(ckpt.error());
    std::map<std::string, std::vector<float>> overrides;
    std::vector<std::string> smoothed;
    std::string notes;  // printed once the output is written
    char buf[512];
    if (!dynamic) {
      auto arch = st::Architecture::of(**ckpt);
      if (!arch) return st::cli::report(arch.error());
      if (do_smooth) {
        auto r = st::smooth(**ckpt, *arch, stats, sopt);
        if (!r) return st::cli::report(r.error());
        overrides = std::move(r->tensors);
        smoothed = std::move(r->smoothed);
        o.overrides = &overrides;
        std::snprintf(buf, sizeof buf, "%s: anti-outlier %s: %zu smoothing pairs\n", st::cli::tool_name().c_str(),
                      anti_outlier.c_str(), r->pairs);
        notes += buf;
      }
      auto ranges = st::choose_act_ranges(stats, am, smoothed);
      if (am != st::ActMethod::minmax) {
        size_t clipped = 0;
        for (const auto& [p, c] : ranges.clip) clipped += c < 1.0f;
        std::snprintf(buf, sizeof buf, "%s: act-method %s: %zu of %zu input ranges clipped\n",
                      st::cli::tool_name().c_str(), act_method.c_str(), clipped, ranges.clip.size());
        notes += buf;
      }
      for (const auto& f : st::pick_fallback(*arch, stats, fallback)) {
        o.float_globs.push_back(f.prefix);
        std::snprintf(buf, sizeof buf, "%s: fallback: kept %s float (input range/rms %.1f)\n",
                      st::cli::tool_name().c_str(), f.group.c_str(), f.score);
        notes += buf;
      }
    }
    st::cli::Progress progress("tensors");
    o.progress = [&](uint64_t done, uint64_t total, uint64_t bytes) { progress.update(done, total, bytes); };
    o.warn = [](const std::string& m) { st::cli::warn(m); };
    auto r = st::quantize_w8a8(**ckpt, o);
    progress.finish();
    if (!r) return st::cli::report(r.error());
    if (!quiet || fallback > 0) std::fputs(notes.c_str(), stderr);
    if (!quiet)
      std::fprintf(stderr, "%s: %zu linears %s, %zu float; %.1f MB in, %.1f MB out%s%s\n",
                   st::cli::tool_name().c_str(), r->linears_quantized, st::w8a8_type_name(o.mode), r->linears_float,
                   r->input_bytes / 1e6, r->output_bytes / 1e6, output == "-" ? "" : " -> ",
                   output == "-" ? "" : output.c_str());
    return st::cli::kExitOk;
  });
}
