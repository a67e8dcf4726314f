// st-tokenize: text <-> token ids with a model's tokenizer.json, exactly as HF tokenizers, and
// packing into fixed-length sequences; see st-tokenize(1).
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <fstream>
#include <iostream>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "bin/common/cli.hpp"
#include "bin/common/json.hpp"
#include "libst/core/parallel.hpp"
#include "libst/text/stream.hpp"

namespace {

// Lines to stdout as they come, or to -o's temporary file (put in place by commit).
class LineSink {
 public:
  explicit LineSink(std::string shown) : shown_(std::move(shown)) {}
  ~LineSink() {
    if (file_) std::fclose(file_);
  }
  st::Status open(const std::string& path) {
    file_ = std::fopen(path.c_str(), "wb");
    if (!file_) return st::make_error(st::Errc::io, std::string("cannot create: ") + std::strerror(errno), shown_);
    return {};
  }
  st::Status write(std::string_view s) {
    FILE* f = file_ ? file_ : stdout;
    if (std::fwrite(s.data(), 1, s.size(), f) == s.size() && (file_ || std::fflush(stdout) == 0)) return {};
    if (!file_ && errno == EPIPE) return st::make_error(st::Errc::broken_pipe, "broken pipe");
    return st::make_error(st::Errc::io, std::string("cannot write: ") + std::strerror(errno), shown_);
  }
  st::Status close() {
    if (!file_) return {};
    const bool ok = std::fflush(file_) == 0 && fsync(fileno(file_)) == 0;
    const bool closed = std::fclose(file_) == 0;
    file_ = nullptr;
    if (ok && closed) return {};
    return st::make_error(st::Errc::io, std::string("cannot write: ") + std::strerror(errno), shown_);
  }

 private:
  std::string shown_;
  FILE* file_ = nullptr;
};

const char* mode_name(st::text::StreamMode m) {
  switch (m) {
    case st::text::StreamMode::decode: return "decode";
    case st::text::StreamMode::count: return "count";
    case st::text::StreamMode::pack: return "pack";
    default: return "encode";
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Turn text into token ids with a model's tokenizer.json, exactly as Hugging Face tokenizers does: one "
               "{\"input_ids\": [...]} line per input line, in order. Input lines are JSONL {\"text\": ...} objects "
               "or plain text. Format and rules: st-tokenize(1)",
               "st-tokenize"};
  std::string tokenizer, input = "-", output = "-";
  bool no_special = false, decode = false, count = false, quiet = false, force = false, json = false;
  int64_t pack = 0;
  app.add_option("TOKENIZER", tokenizer, "tokenizer.json, or a model directory holding one")->required();
  app.add_option("INPUT", input, "JSONL with a \"text\" string per line, plain text, or - for stdin (default)");
  app.add_flag("--no-special", no_special,
               "no special tokens around each text (HF add_special_tokens=False); with --decode, drop them");
  app.add_flag("--decode", decode, "ids to text: read {\"input_ids\": [...]} lines, write {\"text\": ...} lines");
  app.add_option("--pack", pack, "concatenate the documents and cut them into sequences of exactly N tokens")
      ->check(CLI::Range(int64_t(1), int64_t(1) << 30));
  app.add_flag("--count", count, "write the number of tokens of each line, then the total");
  st::cli::add_output_option(app, output, "where the lines go: a file (written whole or not at all) or - for stdout (default)",
                             /*required=*/false);
  st::cli::add_force_flag(app, force);
  st::cli::add_json_flag(app, json, "with -o FILE, print a JSON summary of what was written on stdout");
  st::cli::add_threads_option(app);
  st::cli::add_quiet_flag(app, quiet, "no summary on stderr");
  return st::cli::run(app, argc, argv, [&] {
    if (int(decode) + int(count) + int(pack > 0) > 1)
      return st::cli::report(st::make_error(st::Errc::usage, "--decode, --count and --pack do not go together"));
    if (auto both = st::cli::json_and_stream(json, output); !both) return st::cli::report(both.error());
    std::unique_ptr<st::Output> out;
    if (output != "-") {
      auto o = st::cli::open_output({output, /*stream=*/false, force, {tokenizer, input}, {}});
      if (!o) return st::cli::report(o.error());
      out = std::move(*o);
    }
    auto tok = st::text::Tokenizer::load(tokenizer);
    if (!tok) return st::cli::report(tok.error());
    std::ifstream file;
    if (input != "-") {
      file.open(input, std::ios::binary);
      if (!file) return st::cli::report(st::make_error(st::Errc::io, std::strerror(errno), input));
    }
    st::text::LineReader reader(input == "-" ? std::cin : file);
    st::text::StreamOptions o;
    o.mode = decode ? st::text::StreamMode::decode
             : count ? st::text::StreamMode::count
             : pack > 0 ? st::text::StreamMode::pack
                        : st::text::StreamMode::encode;
    o.special = !no_special;
    o.pack = size_t(pack);
    o.input_name = input;
    LineSink sink(output);
    if (out)
      if (auto opened = sink.open(out->file()); !opened) return st::cli::report(opened.error());
    auto sum = st::text::tokenize_stream(**tok, reader, o, [&](std::string_view s) { return sink.write(s); });
    if (!sum) return st::cli::report(std::move(sum.error()).in_file(input == "-" ? "stdin" : input));
    if (auto closed = sink.close(); !closed) return st::cli::report(closed.error());
    if (out)
      if (auto committed = out->commit(); !committed) return st::cli::report(committed.error());
    if (!quiet && o.mode == st::text::StreamMode::pack)
      std::fprintf(stderr, "%s: %lld documents, %lld tokens -> %lld sequences of %lld (%lld tokens left over, dropped)\n",
                   st::cli::tool_name().c_str(), (long long)sum->documents, (long long)sum->tokens,
                   (long long)sum->sequences, (long long)pack, (long long)sum->dropped);
    if (json) {
      nlohmann::ordered_json j;
      j["output"] = output;
      j["mode"] = mode_name(o.mode);
      j["documents"] = sum->documents;
      j["tokens"] = sum->tokens;
      if (o.mode == st::text::StreamMode::pack) {
        j["sequences"] = sum->sequences;
        j["seq_len"] = pack;
        j["dropped_tokens"] = sum->dropped;
      }
      st::cli::print_json(j);
    }
    return st::cli::kExitOk;
  });
}
