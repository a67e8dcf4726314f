// st-tokenize: text <-> token ids with a model's tokenizer.json, exactly as HF tokenizers, and
// packing into fixed-length sequences; see st-tokenize(1).
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>

#include "bin/common/cli.hpp"
#include "libst/core/parallel.hpp"
#include "libst/text/stream.hpp"

namespace {

st::Status write_stdout(std::string_view s) {
  if (std::fwrite(s.data(), 1, s.size(), stdout) != s.size() || std::fflush(stdout) != 0) {
    if (errno == EPIPE) return st::make_error(st::Errc::broken_pipe, "broken pipe");
    return st::make_error(st::Errc::io, std::string("cannot write to stdout: ") + std::strerror(errno));
  }
  return {};
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Turn text into token ids with a model's tokenizer.json, exactly as Hugging Face tokenizers does: one "
               "{\"input_ids\": [...]} line per input line, in order. Input lines are JSONL {\"text\": ...} objects "
               "or plain text. Format and rules: st-tokenize(1)",
               "st-tokenize"};
  std::string tokenizer, input = "-";
  bool no_special = false, decode = false, count = false, quiet = false;
  int64_t pack = 0;
  app.add_option("TOKENIZER", tokenizer, "tokenizer.json, or a model directory holding one")->required();
  app.add_option("INPUT", input, "JSONL with a \"text\" string per line, plain text, or - for stdin (default)");
  app.add_flag("--no-special", no_special,
               "no special tokens around each text (HF add_special_tokens=False); with --decode, drop them");
  app.add_flag("--decode", decode, "ids to text: read {\"input_ids\": [...]} lines, write {\"text\": ...} lines");
  app.add_option("--pack", pack, "concatenate the documents and cut them into sequences of exactly N tokens")
      ->check(CLI::Range(int64_t(1), int64_t(1) << 30));
  app.add_flag("--count", count, "write the number of tokens of each line, then the total");
  st::cli::add_threads_option(app);
  st::cli::add_quiet_flag(app, quiet, "no summary on stderr");
  return st::cli::run(app, argc, argv, [&] {
    if (int(decode) + int(count) + int(pack > 0) > 1)
      return st::cli::report(st::make_error(st::Errc::usage, "--decode, --count and --pack do not go together"));
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
    auto sum = st::text::tokenize_stream(**tok, reader, o, write_stdout);
    if (!sum) return st::cli::report(std::move(sum.error()).in_file(input == "-" ? "stdin" : input));
    if (!quiet && o.mode == st::text::StreamMode::pack)
      std::fprintf(stderr, "%s: %lld documents, %lld tokens -> %lld sequences of %lld (%lld tokens left over, dropped)\n",
                   st::cli::tool_name().c_str(), (long long)sum->documents, (long long)sum->tokens,
                   (long long)sum->sequences, (long long)pack, (long long)sum->dropped);
    return st::cli::kExitOk;
  });
}
