// Enumerating a checkpoint's decoder linears from config.json and its tensor names.
#include "libst/arch/architecture.hpp"

#include <algorithm>
#include <set>
#include <unordered_map>

#include "libst/format/checkpoint.hpp"

namespace st {
namespace {

constexpr const char* kConfig = "config.json";

// Reads an integer key from config.json; absent or null gives fallback (-1 = required).
Result<int64_t> cfg_int(const nlohmann::json& c, const char* key, int64_t fallback = -1) {
  auto it = c.find(key);
  if (it == c.end() || it->is_null()) {
    if (fallback >= 0) return fallback;
    return make_error(Errc::format, std::string("config.json has no '") + key + "'", kConfig);
  }
  if (!it->is_number_integer() || it->get<int64_t>() < 0)
    return make_error(Errc::format, std::string("config.json: '") + key + "' is not a non-negative integer", kConfig);
  return it->get<int64_t>();
}

// One linear the config says must exist.
struct Expected {
  LinearInfo info;
  int64_t out = 0, in = 0;
  int order = 0;  // position within the layer, for model order
};

bool is_standard(const std::string& t) { return t == "llama" || t == "mistral" || t == "qwen2" || t == "qwen3"; }
bool is_deepseek(const std::string& t) { return t == "deepseek_v2" || t == "deepseek_v3"; }

// Parses "model.layers.<i>.<rest>" into i; -1 when the name is not in a layer.
int layer_of(std::string_view name) {
  constexpr std::string_view p = "model.layers.";
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

const std::vector<std::string>& supported_model_types() {
  static const std::vector<std::string> types = {"llama", "mistral", "qwen2", "qwen3", "deepseek_v2", "deepseek_v3"};
  return types;
}

Result<Architecture> Architecture::from(const nlohmann::json& config, const std::vector<TensorShape>& tensors) {
  Architecture a;
  if (!config.is_object() || config.empty())
    return make_error(Errc::format, "no config.json: cannot tell the model's architecture");
  auto mt = config.find("model_type");
  if (mt == config.end() || !mt->is_string())
    return make_error(Errc::format, "config.json has no 'model_type' string", kConfig);
  a.model_type_ = mt->get<std::string>();
  if (!is_standard(a.model_type_) && !is_deepseek(a.model_type_)) {
    std::string list;
    for (const auto& t : supported_model_types()) list += (list.empty() ? "" : ", ") + t;
    return make_error(Errc::unsupported, "unsupported model_type '" + a.model_type_ + "' (supported: " + list + ")",
                      kConfig);
  }
  a.mla_ = is_deepseek(a.model_type_);

  ST_ASSIGN(const int64_t layers, cfg_int(config, "num_hidden_layers"));
  ST_ASSIGN(a.hidden_, cfg_int(config, "hidden_size"));
  ST_ASSIGN(const int64_t heads, cfg_int(config, "num_attention_heads"));
  ST_ASSIGN(const int64_t kv_heads, cfg_int(config, "num_key_value_heads", heads));
  ST_ASSIGN(const int64_t inter, cfg_int(config, "intermediate_size"));
  if (heads == 0 || layers > 100000) return make_error(Errc::format, "config.json: implausible layer or head count", kConfig);
  a.num_layers_ = static_cast<int>(layers);

  std::vector<Expected> expected;
  auto add = [&](int layer, int order, const std::string& prefix, LinearRole role, const std::string& group,
                 TpStyle tp, int64_t out, int64_t in) -> LinearInfo& {
    Expected e;
    e.info.prefix = prefix;
    e.info.role = role;
    e.info.layer = layer;
    e.info.group = group.empty() ? prefix : group;
    e.info.tp = tp;
    e.info.float_by_default = role == LinearRole::router;
    e.out = out;
    e.in = in;
    e.order = order;
    expected.push_back(std::move(e));
    return expected.back().info;
  };
  // A gate/up/down MLP under parent (order base ob).
  auto add_mlp = [&](int layer, int ob, const std::string& parent, int64_t width, int expert, bool shared) {
    const std::string g = parent + ":gate_up";
    for (auto [name, role, tp, out, in, o] :
         {std::tuple{"gate_proj", LinearRole::gate, TpStyle::column, width, a.hidden_, 0},
          std::tuple{"up_proj", LinearRole::up, TpStyle::column, width, a.hidden_, 1},
          std::tuple{"down_proj", LinearRole::down, TpStyle::row, a.hidden_, width, 2}}) {
      LinearInfo& li = add(layer, ob + o, parent + "." + name, role, role == LinearRole::down ? "" : g, tp, out, in);
      li.expert = expert;
      li.shared_expert = shared;
    }
  };

  if (!a.mla_) {
    int64_t head_dim = a.hidden_ / heads;
    if (auto it = config.find("head_dim"); it != config.end() && !it->is_null()) {
      ST_ASSIGN(head_dim, cfg_int(config, "head_dim"));
    }
    for (int i = 0; i < a.num_layers_; ++i) {
      const std::string attn = "model.layers." + std::to_string(i) + ".self_attn";
      const std::string qkv = attn + ":qkv";
      add(i, 0, attn + ".q_proj", LinearRole::q, qkv, TpStyle::column, heads * head_dim, a.hidden_);
      add(i, 1, attn + ".k_proj", LinearRole::k, qkv, TpStyle::column, kv_heads * head_dim, a.hidden_);
      add(i, 2, attn + ".v_proj", LinearRole::v, qkv, TpStyle::column, kv_heads * head_dim, a.hidden_);
      add(i, 3, attn + ".o_proj", LinearRole::o, "", TpStyle::row, a.hidden_, heads * head_dim);
      add_mlp(i, 10, "model.layers." + std::to_string(i) + ".mlp", inter, -1, false);
      AttentionInfo at;
      at.prefix = attn;
      at.layer = i;
      at.heads = heads;
      at.kv_heads = kv_heads;
      at.head_dim = head_dim;
      a.attention_.push_back(at);
    }
  } else {
    ST_ASSIGN(const int64_t q_lora, cfg_int(config, "q_lora_rank", 0));
    ST_ASSIGN(const int64_t kv_lora, cfg_int(config, "kv_lora_rank"));
    ST_ASSIGN(const int64_t nope, cfg_int(config, "qk_nope_head_dim"));
    ST_ASSIGN(const int64_t rope, cfg_int(config, "qk_rope_head_dim"));
    ST_ASSIGN(const int64_t vdim, cfg_int(config, "v_head_dim"));
    ST_ASSIGN(const int64_t n_routed, cfg_int(config, "n_routed_experts", 0));
    ST_ASSIGN(const int64_t n_shared, cfg_int(config, "n_shared_experts", 0));
    ST_ASSIGN(const int64_t moe_inter, cfg_int(config, "moe_intermediate_size", n_routed > 0 ? -1 : 0));
    ST_ASSIGN(const int64_t first_dense, cfg_int(config, "first_k_dense_replace", 0));
    ST_ASSIGN(const int64_t freq, cfg_int(config, "moe_layer_freq", 1));
    if (n_routed > 100000) return make_error(Errc::format, "config.json: implausible n_routed_experts", kConfig);
    for (int i = 0; i < a.num_layers_; ++i) {
      const std::string layer = "model.layers." + std::to_string(i);
      const std::string attn = layer + ".self_attn";
      const std::string in_group = attn + ":q_a+kv_a";
      if (q_lora > 0) {
        add(i, 0, attn + ".q_a_proj", LinearRole::q_a, in_group, TpStyle::replicated, q_lora, a.hidden_);
        add(i, 2, attn + ".q_b_proj", LinearRole::q_b, "", TpStyle::column, heads * (nope + rope), q_lora);
      } else {
        add(i, 0, attn + ".q_proj", LinearRole::q, in_group, TpStyle::column, heads * (nope + rope), a.hidden_);
      }
      add(i, 1, attn + ".kv_a_proj_with_mqa", LinearRole::kv_a, in_group, TpStyle::replicated, kv_lora + rope,
          a.hidden_);
      add(i, 3, attn + ".kv_b_proj", LinearRole::kv_b, "", TpStyle::column, heads * (nope + vdim), kv_lora);
      add(i, 4, attn + ".o_proj", LinearRole::o, "", TpStyle::row, a.hidden_, heads * vdim);
      const std::string mlp = layer + ".mlp";
      const bool moe = n_routed > 0 && i >= first_dense && freq > 0 && i % freq == 0;
      if (!moe) {
        add_mlp(i, 10, mlp, inter, -1, false);
      } else {
        add(i, 10, mlp + ".gate", LinearRole::router, "", TpStyle::replicated, n_routed, a.hidden_);
        if (n_shared > 0) add_mlp(i, 20, mlp + ".shared_experts", moe_inter * n_shared, -1, true);
        for (int64_t j = 0; j < n_routed; ++j)
          add_mlp(i, 30 + 3 * static_cast<int>(j), mlp + ".experts." + std::to_string(j), moe_inter,
                  static_cast<int>(j), false);
      }
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
      a.attention_.push_back(at);
    }
  }

  // Match the expectation against the tensors.
  std::unordered_map<std::string, const TensorShape*> by_name;
  for (const auto& t : tensors) by_name.emplace(t.name, &t);
  std::set<std::string> claimed;
  bool have_dtype = false;
  for (auto& e : expected) {
    const std::string w = e.info.weight_name();
    auto it = by_name.find(w);
    if (it == by_name.end())
      return make_error(Errc::format,
                        "missing linear weight that config.json (" + a.model_type_ + ") implies", "", w);
    const TensorShape& t = *it->second;
    if (t.shape.size() != 2)
      return make_error(Errc::format, "expected a 2-D linear weight, got " + std::to_string(t.shape.size()) + "-D", "",
                        w);
    if (!dtype_is_float(t.dtype))
      return make_error(Errc::unsupported, std::string("linear weight has dtype ") + dtype_name(t.dtype) +
                                               " (expected F16, BF16 or F32; is the model already quantized?)",
                        "", w);
    if (t.shape[0] != e.out || t.shape[1] != e.in)
      return make_error(Errc::format,
                        "shape [" + std::to_string(t.shape[0]) + ", " + std::to_string(t.shape[1]) +
                            "] does not match config.json's [" + std::to_string(e.out) + ", " + std::to_string(e.in) +
                            "]",
                        "", w);
    if (!have_dtype) {
      a.dtype_ = t.dtype;
      have_dtype = true;
    } else if (t.dtype != a.dtype_) {
      return make_error(Errc::unsupported, std::string("linear weights of mixed dtypes (") + dtype_name(a.dtype_) +
                                               " and " + dtype_name(t.dtype) + ")", "", w);
    }
    e.info.dtype = t.dtype;
    e.info.out_features = e.out;
    e.info.in_features = e.in;
    claimed.insert(w);
    if (auto b = by_name.find(e.info.bias_name()); b != by_name.end()) {
      const TensorShape& bt = *b->second;
      if (bt.shape.size() != 1 || bt.shape[0] != e.out)
        return make_error(Errc::format, "bias shape does not match the weight's output features", "", bt.name);
      e.info.has_bias = true;
      claimed.insert(bt.name);
    }
  }
  // A 2-D tensor in a decoder layer that we do not know is a linear we would silently skip.
  for (const auto& t : tensors) {
    const int l = layer_of(t.name);
    if (l < 0 || l >= a.num_layers_ || t.shape.size() != 2 || claimed.count(t.name)) continue;
    return make_error(Errc::unsupported, "2-D tensor in a decoder layer that " + a.model_type_ +
                                             " does not have: cannot tell whether it is a linear", "", t.name);
  }

  std::stable_sort(expected.begin(), expected.end(), [](const Expected& x, const Expected& y) {
    return x.info.layer != y.info.layer ? x.info.layer < y.info.layer : x.order < y.order;
  });
  for (auto& e : expected) {
    a.by_prefix_.emplace(e.info.prefix, a.linears_.size());
    a.linears_.push_back(std::move(e.info));
  }
  return a;
}

Result<Architecture> Architecture::of(const Checkpoint& ckpt) {
  std::vector<TensorShape> ts;
  ts.reserve(ckpt.tensors().size());
  for (const auto& e : ckpt.tensors()) ts.push_back({e.info->name, e.info->dtype, e.info->shape});
  auto r = from(ckpt.config(), ts);
  if (!r) {
    Error err = std::move(r).error();
    const bool dir = ckpt.layout() != Layout::stream && ckpt.layout() != Layout::file;
    err.file = (err.file == kConfig && dir) ? ckpt.path() + "/" + kConfig : ckpt.path();
    return err;
  }
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
  if (name == "model.embed_tokens.weight") return TensorKind::embedding;
  if (name == "lm_head.weight") return TensorKind::lm_head;
  if (name.find("norm") != std::string_view::npos) return TensorKind::norm;
  return TensorKind::other;
}

}  // namespace st
