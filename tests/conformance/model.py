"""What the loaders' model classes expect, from config.json and the tensor names: linears, fused
groups, routed experts, heads, norms and attention-quantization tensors."""
import re

# Linear module names of the Llama / Qwen2 / DeepSeek-V2/V3 model classes (vllm model_executor/models
# llama.py, qwen2.py, deepseek_v2.py; MindIE models/llama, qwen2, deepseekv2), plus st-shard's packed names
# (MindIE's W8A8SC path loads query_key_value / gate_up_proj: models/base/modeling.py load_qkv_weights).
LINEAR_NAMES = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj", "q_a_proj", "q_b_proj",
                "kv_a_proj_with_mqa", "kv_b_proj", "query_key_value", "gate_up_proj"}
FA_RE = re.compile(r"^(.*)\.(fa_[qkv])\.(scale|offset)$")
EXPERT_RE = re.compile(r"^(.*\.experts)\.(\d+)\.(gate_proj|up_proj|down_proj)$")


class Model:
    def __init__(self, config, names):
        """config: config.json (dict); names: tensor names and described names of the unit."""
        self.config = config if isinstance(config, dict) else {}
        self.model_type = str(self.config.get("model_type", ""))
        self.is_mla = "kv_lora_rank" in self.config
        self.heads = self.config.get("num_attention_heads")
        self.kv_heads = self.config.get("num_key_value_heads", self.heads)
        self.vocab = self.config.get("vocab_size")
        self.linears = sorted({n.rsplit(".", 1)[0] for n in names
                               if n.endswith(".weight") and n.rsplit(".", 2)[-2] in LINEAR_NAMES})
        self.fa = {}  # attention prefix -> {(fa_q, scale): name, ...}
        for n in names:
            if m := FA_RE.match(n):
                self.fa.setdefault(m.group(1), {})[(m.group(2), m.group(3))] = n
        self.experts = {}  # "<layer>.mlp.experts" -> {index: [linear prefixes]}
        for p in self.linears:
            if m := EXPERT_RE.match(p):
                self.experts.setdefault(m.group(1), {}).setdefault(int(m.group(2)), []).append(p)

    def dtype(self):
        """The float dtype a loader takes the model to be (torch_dtype, else the newer dtype key)."""
        return self.config.get("torch_dtype") or self.config.get("dtype")

    def fused_groups(self):
        """Linears one fused parameter loads together (vllm QKVParallelLinear / MergedColumnParallelLinear,
        fused_qkv_a_proj for q_lora models; MindIE load_column_multi / get_multi_weights_col)."""
        have = set(self.linears)
        groups = []
        for p in self.linears:
            base, leaf = p.rsplit(".", 1)
            if leaf == "q_proj":
                groups.append([p, base + ".k_proj", base + ".v_proj"])
            elif leaf == "gate_proj":
                groups.append([p, base + ".up_proj"])
            elif leaf == "q_a_proj" and self.config.get("q_lora_rank"):
                groups.append([p, base + ".kv_a_proj_with_mqa"])
        return [g for g in groups if any(m in have for m in g)]

    def has_bias(self, linear, float_names=None):
        """Whether the model class builds `linear` with a bias (so the checkpoint must carry `.bias`)."""
        if float_names is not None:
            return linear + ".bias" in float_names
        leaf = linear.rsplit(".", 1)[-1]
        if self.model_type == "qwen2" and leaf in ("q_proj", "k_proj", "v_proj"):
            return True  # vllm qwen2.py Qwen2Attention: QKVParallelLinear(bias=True)
        if self.config.get("attention_bias") and leaf in ("q_proj", "k_proj", "v_proj", "o_proj"):
            return True
        return bool(self.config.get("mlp_bias")) and leaf in ("gate_proj", "up_proj", "down_proj")

