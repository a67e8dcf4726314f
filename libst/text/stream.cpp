// tokenize_stream: encode / count / pack / decode over lines, output in input order.
#include "libst/text/stream.hpp"

#include "libst/text/pack.hpp"

namespace st::text {

void encode_line(const Tokenizer& tok, TextFormat format, bool add_special, const std::vector<int32_t>& separator,
                 bool skip_empty, LineJob& job) {
  std::string text;
  auto has = document_text(job.line, format, text);
  if (!has) {
    job.status = has.error();
    return;
  }
  if (!*has || (skip_empty && text.empty())) {
    job.skip = true;
    return;
  }
  job.status = tok.encode(text, add_special, job.ids);
  job.ids.insert(job.ids.end(), separator.begin(), separator.end());
}

Result<StreamSummary> tokenize_stream(const Tokenizer& tok, LineReader& in, const StreamOptions& o,
                                      const std::function<Status(std::string_view)>& write) {
  std::string first;
  ST_CHECK(in.peek(first));
  const TextFormat format = text_format(o.input_name, first);
  const std::vector<int32_t> separator =
      o.mode == StreamMode::pack ? document_separator(tok, o.special) : std::vector<int32_t>();
  StreamSummary sum;
  Packer packer(o.pack);
  std::string buffer;
  auto flush = [&](bool always) -> Status {
    if (buffer.empty() || (!always && buffer.size() < (size_t(1) << 20))) return {};
    Status s = write(buffer);
    buffer.clear();
    return s;
  };

  auto work = [&](LineJob& job) {
    if (o.mode != StreamMode::decode) {
      encode_line(tok, format, o.special, separator, o.mode == StreamMode::pack, job);
      if (job.status && !job.skip && o.mode == StreamMode::encode) append_ids_json(job.out, job.ids), job.out += '\n';
      return;
    }
    if (job.line.find_first_not_of(" \t") == std::string::npos) {
      job.skip = true;
      return;
    }
    auto ids = parse_ids_line(job.line);
    auto text = ids ? tok.decode(*ids, !o.special) : Result<std::string>(ids.error());
    if (!text) job.status = text.error();
    else append_text_json(job.out, *text), job.out += '\n';
  };
  auto sink = [&](LineJob& job) -> Result<bool> {
    ++sum.documents;
    sum.tokens += int64_t(job.ids.size());
    if (o.mode == StreamMode::count) {
      buffer += std::to_string(job.ids.size()) + '\n';
    } else if (o.mode == StreamMode::pack) {
      for (const auto& seq : packer.add(job.ids)) {
        append_ids_json(buffer, seq);
        buffer += '\n';
        ++sum.sequences;
      }
    } else {
      buffer += job.out;
    }
    ST_CHECK(flush(false));
    return true;
  };
  ST_CHECK(map_lines(in, work, sink));
  if (o.mode == StreamMode::count) buffer += "total " + std::to_string(sum.tokens) + '\n';
  sum.dropped = int64_t(packer.pending());
  ST_CHECK(flush(true));
  return sum;
}

}  // namespace st::text
