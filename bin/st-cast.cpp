// st-cast: a float checkpoint in another float dtype; DeepSeek's FP8 release dequantized, see st-cast(1).
#include <cstdio>

#include <nlohmann/json.hpp>

#include "bin/common/cli.hpp"
#include "bin/common/json.hpp"
#include "bin/common/progress.hpp"
#include "libst/cast/cast.hpp"
#include "libst/format/checkpoint.hpp"

int main(int argc, char** argv) {
  CLI::App app{"Write a float checkpoint in another float dtype: 16-bit tensors converted, DeepSeek's block-scaled "
               "FP8 weights (F8_E4M3 + 128x128 weight_scale_inv) dequantized and their scales dropped, "
               "config.json's quantization_config removed. Rounding is to nearest, ties to even",
               "st-cast"};
  std::string model, to, output;
  bool force = false, quiet = false, json = false;
  app.add_option("MODEL", model, "float checkpoint: .safetensors file, HF directory, or - for a stream on stdin")
      ->required();
  app.add_option("--to", to, "target dtype: bf16, f16 or f32")->required()->check(CLI::IsMember({"bf16", "f16", "f32"}));
  st::cli::add_output_option(app, output,
                             "output: a directory for a directory input (the same weight files), a .safetensors file "
                             "for a file, or - for a safetensors stream on stdout");
  st::cli::add_force_flag(app, force);
  st::cli::add_threads_option(app);
  st::cli::add_progress_option(app);
  st::cli::add_json_flag(app, json, "print a JSON summary of what was written on stdout");
  st::cli::add_quiet_flag(app, quiet);
  return st::cli::run(app, argc, argv, [&] {
    if (auto both = st::cli::json_and_stream(json, output); !both) return st::cli::report(both.error());
    auto out = st::cli::open_output({output, /*stream=*/true, force, {model}, {}});
    if (!out) return st::cli::report(out.error());
    auto ckpt = st::Checkpoint::open(model);
    if (!ckpt) return st::cli::report(ckpt.error());
    st::CastOptions o;
    o.to = *st::cast_target(to);
    o.output = out->get();
    st::cli::ProgressLine progress(quiet);
    o.progress = progress.callback();
    auto r = st::cast(**ckpt, o);
    progress.finish();
    if (!r) return st::cli::report(r.error());
    if (!quiet)
      std::fprintf(stderr, "%s: %zu tensors, %zu converted to %s (%zu FP8 weights dequantized, %zu scales dropped); "
                           "%.1f MB in, %.1f MB out%s%s\n",
                   st::cli::tool_name().c_str(), r->tensors, r->converted, to.c_str(), r->dequantized,
                   r->scales_dropped, r->input_bytes / 1e6, r->output_bytes / 1e6, output == "-" ? "" : " -> ",
                   output == "-" ? "" : output.c_str());
    if (json) {
      nlohmann::ordered_json j;
      j["output"] = output;
      j["to"] = to;
      j["tensors"] = r->tensors;
      j["converted"] = r->converted;
      j["dequantized"] = r->dequantized;
      j["scales_dropped"] = r->scales_dropped;
      j["input_bytes"] = r->input_bytes;
      j["output_bytes"] = r->output_bytes;
      j["files"] = r->files;
      st::cli::print_json(j);
    }
    return st::cli::kExitOk;
  });
}
