// The HF tokenizer oracle (transformers.js, via @lenml/tokenizers) for st-tools' tokenizer
// fixtures and benchmark. Run with NODE_PATH naming a node_modules that holds @lenml/tokenizers.
//
//   node tokenizer-oracle.js expect DIR CORPUS OUT   for every line {"text": ...} of CORPUS, one line
//        {"special": ids, "plain": ids, "decoded": text, "decoded_skip": text} to OUT, with DIR's
//        tokenizer.json and tokenizer_config.json (encode with add_special_tokens true / false;
//        decode of the "special" ids keeping / skipping special tokens)
//   node tokenizer-oracle.js bench DIR TEXTS         encodes the first 200 lines {"text": ...} of
//        TEXTS to warm up the JIT, then every line timed (one thread, add_special_tokens false, the
//        tokenizer already loaded); prints "SECONDS BYTES TOKENS"
const fs = require("fs");
const { TokenizerLoader } = require("@lenml/tokenizers");

function load(dir) {
  const json = JSON.parse(fs.readFileSync(dir + "/tokenizer.json", "utf8"));
  let config = {};
  if (fs.existsSync(dir + "/tokenizer_config.json"))
    config = JSON.parse(fs.readFileSync(dir + "/tokenizer_config.json", "utf8"));
  return TokenizerLoader.fromPreTrained({ tokenizerJSON: json, tokenizerConfig: config });
}

function texts(file) {
  return fs.readFileSync(file, "utf8").split("\n").filter((l) => l.length > 0).map((l) => JSON.parse(l).text);
}

const [mode, dir, input, out] = process.argv.slice(2);
const tok = load(dir);
if (mode === "expect") {
  const lines = texts(input).map((t) => {
    const special = tok.encode(t, { add_special_tokens: true });
    const plain = tok.encode(t, { add_special_tokens: false });
    const args = { clean_up_tokenization_spaces: false };
    const decode = (skip) => (special.length ? tok.decode(special, { ...args, skip_special_tokens: skip }) : "");
    const decoded = decode(false), decoded_skip = decode(true);
    return JSON.stringify({ special, plain, decoded, decoded_skip });
  });
  fs.writeFileSync(out, lines.join("\n") + "\n");
} else if (mode === "bench") {
  const all = texts(input);
  let bytes = 0, tokens = 0;
  for (const t of all.slice(0, 200)) tok.encode(t, { add_special_tokens: false });
  const start = process.hrtime.bigint();
  for (const t of all) {
    tokens += tok.encode(t, { add_special_tokens: false }).length;
    bytes += Buffer.byteLength(t, "utf8");
  }
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  console.log(`${seconds} ${bytes} ${tokens}`);
} else {
  console.error("usage: tokenizer-oracle.js expect|bench DIR FILE [OUT]");
  process.exit(2);
}
