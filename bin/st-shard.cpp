// st-shard: split a checkpoint into tensor-parallel part{r}-of-{N}/ folders, and merge them back.
#include <cstdio>

#include <nlohmann/json.hpp>

#include "bin/common/cli.hpp"
#include "bin/common/json.hpp"
#include "bin/common/progress.hpp"
#include "libst/shard/shard.hpp"

namespace {

struct Options {
  std::string input;
  int tp = 0;
  std::string output;
  bool no_pack = false;
  bool replicate_embeddings = false;
  bool split_embeddings = false;
  bool force = false;
  bool dry_run = false;
  bool quiet = false;
  bool json = false;
  std::string merge;
};

std::string shape_str(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? "," : "") + std::to_string(s[i]);
  return out + "]";
}

std::string rule_str(const st::SplitRule& r) {
  if (r.kind != st::SplitKind::split) return st::split_kind_name(r.kind);
  return "split dim " + std::to_string(r.dim) + " /" + std::to_string(r.chunks);
}

// --dry-run: one line per input tensor: name, rule, part tensor, per-rank shape there.
void print_plan(const st::ShardPlan& plan) {
  std::printf("# tp %d, pack %s, part file %s\n", plan.tp, plan.pack ? "on" : "off", plan.weight_file.c_str());
  std::printf("%-60s %-18s %-60s %s\n", "TENSOR", "RULE", "PART TENSOR", "PART SHAPE");
  std::map<std::string, const st::ShardOutput*> outs;
  for (const auto& o : plan.outputs) outs[o.name] = &o;
  for (const auto& s : plan.sources) {
    const std::string into = s.into + (s.at ? "@" + std::to_string(s.at) : "") + (s.stored ? "" : " (shared)");
    std::printf("%-60s %-18s %-60s %s\n", s.name.c_str(), rule_str(s.rule).c_str(), into.c_str(),
                shape_str(outs.at(s.into)->shape).c_str());
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Split a checkpoint into tensor-parallel part{r}-of-{N} folders, or merge them back", "st-shard"};
  Options o;
  app.add_option("CKPT", o.input, "checkpoint to split: file, directory or - for stdin");
  app.add_option("--tp", o.tp, "tensor-parallel degree N (number of parts)")->option_text("N");
  st::cli::add_output_option(app, o.output, "output directory (merge: a directory, a file or - as the input was)",
                             /*required=*/false);
  app.add_flag("--no-pack", o.no_pack, "keep q/k/v and gate/up under their own names (no query_key_value, gate_up_proj)");
  app.add_flag("--replicate-embeddings", o.replicate_embeddings,
               "keep model.embed_tokens whole on every rank instead of splitting it by vocabulary "
               "(the default for W8A8S input: MindIE's W8A8SC models read it whole)");
  app.add_flag("--split-embeddings", o.split_embeddings,
               "split model.embed_tokens by vocabulary, also for W8A8S input");
  app.add_option("--merge", o.merge, "merge the part folders in DIR back into the original checkpoint")
      ->option_text("DIR")
      ->check(st::cli::not_stdin());
  app.add_flag("--dry-run", o.dry_run, "print the split plan (rule and part shape per tensor) and write nothing");
  st::cli::add_force_flag(app, o.force);
  st::cli::add_threads_option(app);
  st::cli::add_progress_option(app);
  st::cli::add_json_flag(app, o.json, "print a JSON summary of what was written on stdout");
  st::cli::add_quiet_flag(app, o.quiet);

  return st::cli::run(app, argc, argv, [&] {
    auto usage = [](const std::string& m) { return st::cli::report(st::make_error(st::Errc::usage, m)); };
    st::cli::ProgressLine progress(o.quiet);
    const st::ProgressFn on_progress = progress.callback();

    if (o.output.empty() && !o.dry_run) return usage("-o PATH is required");
    if (o.json && o.dry_run) return usage("--json is the summary of what was written: not with --dry-run");
    if (auto both = st::cli::json_and_stream(o.json, o.output); !both) return st::cli::report(both.error());
    if (!o.merge.empty()) {
      if (!o.input.empty() || o.tp || o.no_pack || o.replicate_embeddings || o.split_embeddings || o.dry_run)
        return usage("--merge takes only -o, -f, -q, -j and --json");
      auto out = st::cli::open_output({o.output, /*stream=*/true, o.force, {o.merge}, {}});
      if (!out) return st::cli::report(out.error());
      auto sum = st::merge(o.merge, **out, st::MergeOptions{on_progress});
      progress.finish();
      if (!sum) return st::cli::report(sum.error());
      if (!o.quiet)
        std::fprintf(stderr, "%s: merged %d parts into %zu tensors (%.1f MB, %s layout) in '%s'\n",
                     st::cli::tool_name().c_str(), sum->tp, sum->tensors, sum->bytes / 1e6, sum->layout.c_str(),
                     o.output.c_str());
      if (o.json)
        st::cli::print_json({{"output", o.output}, {"merged_parts", sum->tp}, {"tensors", sum->tensors}, {"bytes", sum->bytes},
                    {"layout", sum->layout}});
      return st::cli::kExitOk;
    }

    if (o.input.empty()) return usage("missing CKPT (or --merge DIR)");
    if (o.tp < 1) return usage("--tp N is required and must be at least 1");
    st::ShardOptions so;
    so.tp = o.tp;
    so.pack = !o.no_pack;
    if (o.replicate_embeddings && o.split_embeddings)
      return usage("--replicate-embeddings and --split-embeddings exclude each other");
    if (o.replicate_embeddings || o.split_embeddings) so.replicate_embeddings = o.replicate_embeddings;
    so.progress = on_progress;
    std::unique_ptr<st::Output> out;
    if (!o.dry_run) {
      auto opened = st::cli::open_output({o.output, /*stream=*/false, o.force, {o.input}, {}});
      if (!opened) return st::cli::report(opened.error());
      out = std::move(*opened);
    }
    auto in = st::Checkpoint::open(o.input);
    if (!in) return st::cli::report(in.error());
    if (o.dry_run) {
      auto plan = st::plan_shard(**in, so);
      if (!plan) return st::cli::report(plan.error());
      print_plan(*plan);
      return st::cli::kExitOk;
    }
    auto sum = st::shard(**in, *out, so);
    progress.finish();
    if (!sum) return st::cli::report(sum.error());
    if (!o.quiet)
      std::fprintf(stderr, "%s: wrote %d parts of %zu tensors each (from %zu; %.1f MB in, %.1f MB out) to '%s'\n",
                   st::cli::tool_name().c_str(), sum->tp, sum->part_tensors, sum->input_tensors, sum->input_bytes / 1e6,
                   sum->output_bytes / 1e6, o.output.c_str());
    if (o.json)
      st::cli::print_json({{"output", o.output}, {"tp", sum->tp}, {"part_tensors", sum->part_tensors},
                  {"input_tensors", sum->input_tensors}, {"input_bytes", sum->input_bytes},
                  {"output_bytes", sum->output_bytes}});
    return st::cli::kExitOk;
  });
}
