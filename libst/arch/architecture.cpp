// Enumerating a checkpoint's decoder linears from config.json and its tensor names.
#include "libst/arch/architecture.hpp"

#include <algorithm>
#include <set>
#include <unordered_map>

#include "libst/format/checkpoint.hpp"

namespace st {
// One linear the config says must exist.
struct ExpectedLinear {
  LinearInfo info;
  int64_t out = 0, in = 0;
  int order = 0;  // position within the layer, for model order
};

namespace {

// Parses "<layers><i>.<rest>" (layers: "model.layers.", ...) into i; -1 when the name is not in a layer.
int layer_of(std::string_view name, std::string_view p) {
  if (name.substr(0, p.size()) != p) return -1;
  size_t i = p.size();
  int64_t v = 0;
  size_t start = i;
  while (i < name.size() && name[i] >= '0' && name[i] <= '9' && v < 1'000'000) v = v * 10 + (name[i++] - '0');
  if (i == start || i >= name.size() || name[i] != '.') return -1;
  return static_cast<int>(v);
}

}  // namespace

const char* role_name(LinearRole r) {
  switch (r) {
    case LinearRole::q: return "q";
    case LinearRole::k: return "k";
    case LinearRole::v: return "v";
    case LinearRole::o: return "o";
    case LinearRole::gate: return "gate";
    case LinearRole::up: return "up";
    case LinearRole::down: return "down";
    case LinearRole::q_a: return "q_a";
    case LinearRole::q_b: return "q_b";
    case LinearRole::kv_a: return "kv_a";
    case LinearRole::kv_b: return "kv_b";
    case LinearRole::router: return "router";
    case LinearRole::qkv: return "qkv";
    case LinearRole::gate_up: return "gate_up";
  }
  return "?";
}

const char* tp_style_name(TpStyle s) {
  switch (s) {
    case TpStyle::column: return "column";
    case TpStyle::row: return "row";
    case TpStyle::replicated: return "replicated";
  }
  return "?";
}

namespace {

// The linears config.json says exist, gathered layer by layer.
class Expectation {
 public:
  explicit Expectation(const model::ModelConfig& c) : c_(c), n_(c.names()) {}
  std::vector<ExpectedLinear> linears;
  std::vector<AttentionInfo> attention;

  void standard_layer(int i);
  void mla_layer(int i);

 private:
  LinearInfo& add(int layer, int order, const std::string& prefix, LinearRole role, const std::string& group, TpStyle tp,
                  int64_t out, int64_t in) {
    ExpectedLinear e;
    e.info.prefix = prefix;
    e.info.role = role;
    e.info.layer = layer;
    e.info.group = group.empty() ? prefix : group;
    e.info.tp = tp;
    // The loaders build the router, and MLA's kv_b_proj (split per head at load), unquantized.
    e.info.float_by_default = role == LinearRole::router || role == LinearRole::kv_b;
    e.out = out;
    e.in = in;
    e.order = order;
    linears.push_back(std::move(e));
    return linears.back().info;
  }
  // A gate/up/down MLP under parent (order base ob) with the given leaf names.
  void mlp(int layer, int ob, const std::string& parent, int64_t width, int expert, bool shared, const std::string& gate,
           const std::string& up, const std::string& down) {
    const int64_t hidden = c_.hidden;
    const std::string g = parent + ":gate_up";
    for (auto [name, role, tp, out, in, o] :
         {std::tuple{gate, LinearRole::gate, TpStyle::column, width, hidden, 0},
          std::tuple{up, LinearRole::up, TpStyle::column, width, hidden, 1},
          std::tuple{down, LinearRole::down, TpStyle::row, hidden, width, 2}}) {
      LinearInfo& li = add(layer, ob + o, parent + "." + name, role, role == LinearRole::down ? "" : g, tp, out, in);
      li.expert = expert;
      li.shared_expert = shared;
    }
  }
  // The dense MLP of layer i: separate gate/up, or one fused gate_up tensor.
  void dense_mlp(int i) {
    const std::string m = n_.layer(i) + "." + n_.mlp;
    if (n_.gate_up.empty()) return mlp(i, 10, m, c_.intermediate, -1, false, n_.gate, n_.up, n_.down);
    add(i, 10, m + "." + n_.gate_up, LinearRole::gate_up, "", TpStyle::column, 2 * int64_t(c_.intermediate), c_.hidden);
    add(i, 12, m + "." + n_.down, LinearRole::down, "", TpStyle::row, c_.hidden, c_.intermediate);
  }
  // The router, shared experts (DeepSeek) and routed experts of MoE layer i.
  void moe_block(int i) {
    const std::string m = n_.layer(i) + "." + n_.moe;
    add(i, 10, m + ".gate", LinearRole::router, "", TpStyle::replicated, c_.n_routed_experts, c_.hidden);
    if (c_.n_shared_experts > 0)
      mlp(i, 20, m + ".shared_experts", int64_t(c_.moe_intermediate) * c_.n_shared_experts, -1, true, "gate_proj",
          "up_proj", "down_proj");
    for (int j = 0; j < c_.n_routed_experts; ++j)
      mlp(i, 30 + 3 * j, m + ".experts." + std::to_string(j), c_.moe_intermediate, j, false, n_.expert_gate,
          n_.expert_up, n_.expert_down);
  }
  const model::ModelConfig& c_;
  const model::TensorNames& n_;
};

void Expectation::standard_layer(int i) {
  const int64_t hidden = c_.hidden, heads = c_.heads, kv_heads = c_.kv_heads, head_dim = c_.head_dim;
  const std::string attn = n_.layer(i) + "." + n_.attn;
  if (!n_.qkv.empty()) {
    add(i, 0, attn + "." + n_.qkv, LinearRole::qkv, "", TpStyle::column, (heads + 2 * kv_heads) * head_dim, hidden);
  } else {
    const std::string qkv = attn + ":qkv";
    add(i, 0, attn + "." + n_.q, LinearRole::q, qkv, TpStyle::column, heads * head_dim, hidden);
    add(i, 1, attn + "." + n_.k, LinearRole::k, qkv, TpStyle::column, kv_heads * head_dim, hidden);
    add(i, 2, attn + "." + n_.v, LinearRole::v, qkv, TpStyle::column, kv_heads * head_dim, hidden);
  }
  add(i, 3, attn + "." + n_.o, LinearRole::o, "", TpStyle::row, hidden, heads * head_dim);
  if (c_.is_moe_layer(i)) moe_block(i);
  else dense_mlp(i);
  AttentionInfo at;
  at.prefix = attn;
  at.layer = i;
  at.heads = heads;
  at.kv_heads = kv_heads;
  at.head_dim = head_dim;
  attention.push_back(at);
}

void Expectation::mla_layer(int i) {
  const int64_t hidden = c_.hidden, heads = c_.heads, q_lora = c_.q_lora_rank, kv_lora = c_.kv_lora_rank;
  const int64_t nope = c_.qk_nope_dim, rope = c_.qk_rope_dim, vdim = c_.v_head_dim;
  const std::string attn = n_.layer(i) + "." + n_.attn;
  const std::string in_group = attn + ":q_a+kv_a";
  if (q_lora > 0) {
    add(i, 0, attn + ".q_a_proj", LinearRole::q_a, in_group, TpStyle::replicated, q_lora, hidden);
    add(i, 2, attn + ".q_b_proj", LinearRole::q_b, "", TpStyle::column, heads * (nope + rope), q_lora);
  } else {
    add(i, 0, attn + ".q_proj", LinearRole::q, in_group, TpStyle::column, heads * (nope + rope), hidden);
  }
  add(i, 1, attn + ".kv_a_proj_with_mqa", LinearRole::kv_a, in_group, TpStyle::replicated, kv_lora + rope, hidden);
  add(i, 3, attn + ".kv_b_proj", LinearRole::kv_b, "", TpStyle::column, heads * (nope + vdim), kv_lora);
  add(i, 4, attn + ".o_proj", LinearRole::o, "", TpStyle::row, hidden, heads * vdim);
  if (c_.is_moe_layer(i)) moe_block(i);
  else dense_mlp(i);
  AttentionInfo at;
  at.prefix = attn;
  at.layer = i;
  at.mla = true;
  at.heads = heads;
  at.kv_heads = heads;
  at.head_dim = nope + rope;
  at.q_lora_rank = q_lora;
  at.kv_lora_rank = kv_lora;
  at.qk_nope_head_dim = nope;
  at.qk_rope_head_dim = rope;
  at.v_head_dim = vdim;
  attention.push_back(at);
}

// One expected linear against its tensors: 2-D float weight of the expected shape, optional bias.
Status match_linear(ExpectedLinear& e, const std::unordered_map<std::string, const TensorShape*>& by_name,
                    const std::string& model_type) {
  const std::string w = e.info.weight_name();
  auto it = by_name.find(w);
  if (it == by_name.end())
    return make_error(Errc::format, "missing linear weight that config.json (" + model_type + ") implies", "", w);
  const TensorShape& t = *it->second;
  if (t.shape.size() != 2)
    return make_error(Errc::format, "expected a 2-D linear weight, got " + std::to_string(t.shape.size()) + "-D", "", w);
  if (!dtype_is_float(t.dtype))
    return make_error(Errc::unsupported, std::string("linear weight has dtype ") + dtype_name(t.dtype) +
                                             " (expected F16, BF16 or F32; is the model already quantized?)",
                      "", w);
  if (t.shape[0] != e.out || t.shape[1] != e.in)
    return make_error(Errc::format,
                      "shape [" + std::to_string(t.shape[0]) + ", " + std::to_string(t.shape[1]) +
                          "] does not match config.json's [" + std::to_string(e.out) + ", " + std::to_string(e.in) + "]",
                      "", w);
  e.info.dtype = t.dtype;
  e.info.out_features = e.out;
  e.info.in_features = e.in;
  if (auto b = by_name.find(e.info.bias_name()); b != by_name.end()) {
    const TensorShape& bt = *b->second;
    if (bt.shape.size() != 1 || bt.shape[0] != e.out)
      return make_error(Errc::format, "bias shape does not match the weight's output features", "", bt.name);
    e.info.has_bias = true;
  }
  return Status{};
}

}  // namespace

Result<Architecture> Architecture::from(const nlohmann::json& config, const std::vector<TensorShape>& tensors) {
  ST_ASSIGN(const model::ModelConfig c, model::parse_config(config));
  return from(c, tensors);
}

Result<Architecture> Architecture::from(const model::ModelConfig& c, const std::vector<TensorShape>& tensors) {
  Architecture a;
  a.model_type_ = c.model_type;
  a.names_ = &c.names();
  for (int i = 0; i < c.layers; ++i) a.moe_layers_.push_back(c.is_moe_layer(i));
  a.mla_ = c.mla;
  a.num_layers_ = c.layers;
  a.hidden_ = c.hidden;
  Expectation ex(c);
  for (int i = 0; i < c.layers; ++i) c.mla ? ex.mla_layer(i) : ex.standard_layer(i);
  a.attention_ = std::move(ex.attention);
  ST_CHECK(a.match(ex.linears, tensors));
  return a;
}

// Matches the expected linears against the tensors (all present, one float dtype, nothing
// unexplained in a decoder layer) and stores them in model order.
Status Architecture::match(std::vector<ExpectedLinear>& expected, const std::vector<TensorShape>& tensors) {
  std::unordered_map<std::string, const TensorShape*> by_name;
  for (const auto& t : tensors) by_name.emplace(t.name, &t);
  std::set<std::string> claimed;
  for (auto& e : expected) {
    ST_CHECK(match_linear(e, by_name, model_type_));
    if (claimed.empty()) dtype_ = e.info.dtype;
    else if (e.info.dtype != dtype_)
      return make_error(Errc::unsupported, std::string("linear weights of mixed dtypes (") + dtype_name(dtype_) + " and " +
                                               dtype_name(e.info.dtype) + ")", "", e.info.weight_name());
    claimed.insert(e.info.weight_name());
    if (e.info.has_bias) claimed.insert(e.info.bias_name());
  }
  // A 2-D tensor in a decoder layer that we do not know is a linear we would silently skip.
  for (const auto& t : tensors) {
    const int l = layer_of(t.name, names_->layers);
    if (l < 0 || l >= num_layers_ || t.shape.size() != 2 || claimed.count(t.name)) continue;
    return make_error(Errc::unsupported, "2-D tensor in a decoder layer that " + model_type_ +
                                             " does not have: cannot tell whether it is a linear", "", t.name);
  }
  std::stable_sort(expected.begin(), expected.end(), [](const ExpectedLinear& x, const ExpectedLinear& y) {
    return x.info.layer != y.info.layer ? x.info.layer < y.info.layer : x.order < y.order;
  });
  for (auto& e : expected) {
    by_prefix_.emplace(e.info.prefix, linears_.size());
    linears_.push_back(std::move(e.info));
  }
  return Status{};
}

Result<Architecture> Architecture::of(const Checkpoint& ckpt) {
  ST_ASSIGN(const model::ModelConfig c, model::read_config(ckpt));
  // Block-scaled FP8 weights count as the dtype they read as; their scales are part of them.
  std::vector<TensorShape> ts;
  ts.reserve(ckpt.tensors().size());
  for (const auto& e : ckpt.tensors()) {
    if (e.is_block_scale()) continue;
    if (is_block_fp8(e.info->dtype)) {
      auto d = ckpt.decoder(e);
      if (!d) return std::move(d).error();
    }
    ts.push_back({e.info->name, ckpt.value_dtype(e), e.info->shape});
  }
  auto r = from(c, ts);
  if (!r) return std::move(r).error().in_file(ckpt.path());
  return r;
}

const LinearInfo* Architecture::linear(std::string_view prefix) const {
  auto it = by_prefix_.find(prefix);
  return it == by_prefix_.end() ? nullptr : &linears_[it->second];
}

const LinearInfo* Architecture::linear_of_tensor(std::string_view name) const {
  for (std::string_view suffix : {std::string_view(".weight"), std::string_view(".bias")}) {
    if (name.size() > suffix.size() && name.substr(name.size() - suffix.size()) == suffix) {
      const LinearInfo* l = linear(name.substr(0, name.size() - suffix.size()));
      if (l && (suffix == ".weight" || l->has_bias)) return l;
    }
  }
  return nullptr;
}

std::vector<const LinearInfo*> Architecture::group(std::string_view group_id) const {
  std::vector<const LinearInfo*> out;
  for (const auto& l : linears_)
    if (l.group == group_id) out.push_back(&l);
  return out;
}

TensorKind Architecture::kind(std::string_view name) const {
  if (const LinearInfo* l = linear_of_tensor(name)) {
    const bool weight = name.size() > 7 && name.substr(name.size() - 7) == ".weight";
    (void)l;
    return weight ? TensorKind::linear_weight : TensorKind::linear_bias;
  }
  if (name == names_->embed) return TensorKind::embedding;
  if (name.size() == names_->lm_head.size() + 7 && name.substr(0, names_->lm_head.size()) == names_->lm_head &&
      name.substr(names_->lm_head.size()) == ".weight")
    return TensorKind::lm_head;
  if (name.find("norm") != std::string_view::npos) return TensorKind::norm;
  return TensorKind::other;
}

std::optional<InputSource> Architecture::input_source(const LinearInfo& l) const {
  const std::string L = names_->layer(l.layer) + ".";
  auto norm = [](std::string name) {
    InputSource s;
    s.norm = std::move(name);
    return std::optional<InputSource>(std::move(s));
  };
  switch (l.role) {
    case LinearRole::q:
    case LinearRole::k:
    case LinearRole::v:
    case LinearRole::qkv:
    case LinearRole::q_a:
    case LinearRole::kv_a: return norm(L + names_->input_norm + ".weight");
    case LinearRole::q_b: return norm(L + names_->attn + ".q_a_layernorm.weight");
    case LinearRole::kv_b: return norm(L + names_->attn + ".kv_a_layernorm.weight");
    case LinearRole::gate:
    case LinearRole::up:
    case LinearRole::gate_up:
      if (l.is_expert() || moe_layers_[size_t(l.layer)]) return std::nullopt;
      return norm(L + names_->post_norm + ".weight");
    case LinearRole::down: {
      const std::string parent = l.prefix.substr(0, l.prefix.rfind('.'));
      for (const auto& u : linears_) {
        if (u.layer != l.layer || (u.role != LinearRole::up && u.role != LinearRole::gate_up)) continue;
        if (u.prefix.compare(0, parent.size() + 1, parent + ".") != 0 || u.prefix.find('.', parent.size() + 1) != std::string::npos)
          continue;
        InputSource s;
        s.linear = &u;
        s.row0 = u.role == LinearRole::gate_up ? u.out_features / 2 : 0;
        return s;
      }
      return std::nullopt;
    }
    default: return std::nullopt;
  }
}

}  // namespace st
