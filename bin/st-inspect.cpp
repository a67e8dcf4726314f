// st-inspect: list, summarise and diff safetensors checkpoints and quant descriptions; show __metadata__.
#include <cstdio>
#include <string>
#include <vector>

#include "bin/common/cli.hpp"
#include "bin/common/json.hpp"
#include "bin/common/progress.hpp"
#include "libst/format/checkpoint.hpp"
#include "libst/core/paths.hpp"
#include "libst/format/description.hpp"
#include "libst/inspect/inspect.hpp"

namespace {

struct Options {
  std::vector<std::string> paths;
  bool json = false;
  bool stats = false;
  bool diff = false;
  bool values = false;
  bool detail = false;
  bool metadata = false;
  bool quiet = false;
  std::string filter;
};

// Writes the result to stdout (st::cli::run checks that it was written).
int emit(const std::string& text, int code) {
  std::fwrite(text.data(), 1, text.size(), stdout);
  return code;
}

int list(const Options& o) {
  st::Checkpoint::Options open_options;
  open_options.random_access = false;  // a stream is read once, front to back
  auto ckpt = st::Checkpoint::open(o.paths[0], open_options);
  if (!ckpt) return st::cli::report(ckpt.error());
  st::cli::ProgressLine progress(o.quiet);
  st::InspectOptions io;
  io.filter = o.filter;
  io.stats = o.stats;
  io.progress = progress.callback();
  auto inv = st::inspect(**ckpt, io);
  progress.finish();
  if (!inv) return st::cli::report(inv.error());
  return emit(o.json ? st::cli::json_text(st::inventory_json(*inv)) : st::format_inventory(*inv), st::cli::kExitOk);
}

int metadata(const Options& o) {
  st::Checkpoint::Options open_options;
  open_options.random_access = false;  // only the headers are read
  auto ckpt = st::Checkpoint::open(o.paths[0], open_options);
  if (!ckpt) return st::cli::report(ckpt.error());
  auto files = st::file_metadata(**ckpt, o.filter);
  if (!files) return st::cli::report(files.error());
  return emit(o.json ? st::cli::json_text(st::metadata_json(o.paths[0], *files)) : st::format_metadata(*files),
              st::cli::kExitOk);
}

int print_diff(const Options& o, const st::CheckpointDiff& d) {
  const int code = d.equal() ? st::cli::kExitOk : st::cli::kExitFound;
  if (o.json) return emit(st::cli::json_text(st::diff_json(d)), code);
  return emit(o.detail ? st::format_diff(d) : st::format_diff_summary(d), code);
}

int diff(const Options& o) {
  const std::string &a = o.paths[0], &b = o.paths[1];
  if (a == "-" && b == "-") return st::cli::report(st::make_error(st::Errc::usage, "only one side of --diff can be '-'"));
  const bool ja = st::ends_with(a, ".json"), jb = st::ends_with(b, ".json");
  if (ja != jb)
    return st::cli::report(st::make_error(st::Errc::usage, "--diff compares two checkpoints or two .json descriptions, not one of each"));
  if (ja) {
    if (o.values) return st::cli::report(st::make_error(st::Errc::usage, "--values needs two checkpoints, not descriptions"));
    auto da = st::Description::load(a);
    if (!da) return st::cli::report(da.error());
    auto db = st::Description::load(b);
    if (!db) return st::cli::report(db.error());
    auto d = st::diff_descriptions(*da, *db, o.filter);
    if (!d) return st::cli::report(d.error());
    d->a = a;
    d->b = b;
    return print_diff(o, *d);
  }
  auto ca = st::Checkpoint::open(a);
  if (!ca) return st::cli::report(ca.error());
  auto cb = st::Checkpoint::open(b);
  if (!cb) return st::cli::report(cb.error());
  st::DiffOptions dopt;
  dopt.filter = o.filter;
  dopt.values = o.values;
  auto d = st::diff_checkpoints(**ca, **cb, dopt);
  if (!d) return st::cli::report(d.error());
  return print_diff(o, *d);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "List the tensors of a safetensors checkpoint (dtype, shape, bytes, quant type) with a summary and\n"
      "parameter counts; per-tensor statistics; the files' __metadata__; or the differences between two\n"
      "checkpoints or two quant descriptions.",
      "st-inspect"};
  Options o;
  app.add_option("PATH", o.paths,
                 "checkpoint: a .safetensors file, an HF, quantized or part{i}-of-{n} directory, or - for a "
                 "stream on stdin; with --diff, two of them (or two description .json files)")
      ->required()
      ->expected(1, 2);
  st::cli::add_json_flag(app, o.json, "print one JSON document instead of text");
  app.add_flag("--stats", o.stats,
               "per tensor min, max, mean, std, absmax, fraction of zeros, NaN and Inf counts (reads all data)");
  app.add_flag("--metadata", o.metadata, "print each weight file's __metadata__ (KEY: VALUE lines)");
  app.add_option("--filter", o.filter,
                 "only tensors (with --metadata: keys) whose whole name matches GLOB (* ? [..], '*' crossing dots,\n"
                 "as --float and --scheme match linears), e.g. '*layers.0.*'")
      ->type_name("GLOB");
  app.add_flag("--diff", o.diff,
               "compare two checkpoints or descriptions, summarised by kind of change, type and layers:\n"
               "exit 0 equal, 1 different");
  app.add_flag("--detail", o.detail, "with --diff: list every differing tensor instead of the summary");
  app.add_flag("--values", o.values, "with --diff: max abs difference and cosine of tensors in both");
  st::cli::add_threads_option(app);
  st::cli::add_progress_option(app);
  st::cli::add_quiet_flag(app, o.quiet, "no progress on stderr");
  st::cli::set_exit_status(app, "differences found (--diff)");
  return st::cli::run(app, argc, argv, [&] {
    if (o.diff != (o.paths.size() == 2))
      return st::cli::report(st::make_error(
          st::Errc::usage, o.diff ? "--diff needs two paths" : "one path expected (two only with --diff)"));
    if (o.values && !o.diff) return st::cli::report(st::make_error(st::Errc::usage, "--values needs --diff"));
    if (o.stats && o.diff) return st::cli::report(st::make_error(st::Errc::usage, "--stats and --diff do not mix"));
    if (o.detail && !o.diff) return st::cli::report(st::make_error(st::Errc::usage, "--detail needs --diff"));
    if (o.metadata && (o.diff || o.stats))
      return st::cli::report(st::make_error(st::Errc::usage, "--metadata does not mix with --diff or --stats"));
    if (o.metadata) return metadata(o);
    return o.diff ? diff(o) : list(o);
  });
}
