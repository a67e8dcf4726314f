// st-verify: check a quantized checkpoint's structure, checksums, arithmetic and, against its
// float model, numerics. One line per problem on stdout, then a summary; exit 0 clean,
// 1 problems found, 2 could not check.

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "bin/common/cli.hpp"
#include "bin/common/json.hpp"
#include "bin/common/progress.hpp"
#include "libst/verify/verify.hpp"

namespace {

void print_text(const st::VerifyReport& r, size_t worst, bool quiet) {
  for (const auto& p : r.problems) std::printf("%s\n", p.str().c_str());
  if (quiet) return;
  for (const auto& n : r.notes) std::printf("note: %s\n", n.c_str());
  if (r.against && !r.numerics.empty()) {
    std::vector<const st::LinearNumerics*> sorted;
    for (const auto& n : r.numerics) sorted.push_back(&n);
    std::stable_sort(sorted.begin(), sorted.end(),
                     [](const st::LinearNumerics* a, const st::LinearNumerics* b) { return a->sqnr_db < b->sqnr_db; });
    double mean = 0;
    size_t finite = 0;
    for (const auto& n : r.numerics)
      if (std::isfinite(n.sqnr_db)) mean += n.sqnr_db, ++finite;
    std::printf("numerics: %zu linears, SQNR mean %.2f dB, worst %zu:\n", r.numerics.size(),
                finite ? mean / static_cast<double>(finite) : INFINITY, std::min(worst, sorted.size()));
    std::printf("  %10s  %10s  %9s  %s\n", "sqnr_db", "cosine", "pruned", "linear");
    for (size_t i = 0; i < sorted.size() && i < worst; ++i) {
      const auto& n = *sorted[i];
      std::printf("  %10.2f  %10.6f  %8.2f%%  %s (%s)\n", n.sqnr_db, n.cosine,
                  n.elements ? 100.0 * static_cast<double>(n.pruned) / static_cast<double>(n.elements) : 0.0,
                  n.name.c_str(), n.type.c_str());
    }
  }
  std::printf("%s: %s %s (%s), %zu weight files, %llu tensors, %llu quantized linears; checksums: %llu files, %llu "
              "tensors%s; %zu problem%s\n",
              r.problems.empty() ? "ok" : "FAILED", r.layout.c_str(), r.path.c_str(),
              r.model_quant_type.empty() ? "no description" : r.model_quant_type.c_str(), r.files.size(),
              static_cast<unsigned long long>(r.tensors), static_cast<unsigned long long>(r.linears),
              static_cast<unsigned long long>(r.file_checksums), static_cast<unsigned long long>(r.tensor_checksums),
              r.against ? "; compared with the float model" : "", r.problems.size(), r.problems.size() == 1 ? "" : "s");
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "Check a quantized checkpoint: description <-> tensors, dtypes and shapes per type, checksums,\n"
      "W8A8 arithmetic (deq_scale, input_offset, quant_bias) and, with --against, every int8 weight\n"
      "against the float model. Prints one line per problem, then a summary.",
      "st-verify"};
  std::string path, against;
  bool json = false, quiet = false;
  int worst = 5;
  app.add_option("PATH", path, "quantized directory, part{i}-of-{n} folders' parent, .safetensors file, or - (stream)")
      ->required();
  app.add_option("--against", against, "the float model the checkpoint was quantized from (numeric checks)");
  st::cli::add_json_flag(app, json, "print one JSON document instead of text");
  app.add_option("--worst", worst, "how many of the worst linears (by SQNR) to list (default 5)")
      ->check(CLI::Range(0, 1000000));
  st::cli::add_quiet_flag(app, quiet, "print only the problems; no progress on stderr");
  st::cli::set_exit_status(app, "problems found");
  st::cli::add_threads_option(app);
  st::cli::add_progress_option(app);
  return st::cli::run(app, argc, argv, [&] {
    st::VerifyOptions opts;
    opts.against = against;
    st::cli::ProgressLine progress(quiet);
    opts.progress = progress.callback();
    auto report = st::verify(path, opts);
    progress.finish();
    if (!report) return st::cli::report(report.error());
    const auto n = static_cast<size_t>(worst);
    if (json) st::cli::print_json(st::verify_report_json(*report, n));
    else print_text(*report, n, quiet);
    return report->problems.empty() ? st::cli::kExitOk : st::cli::kExitFound;
  });
}
