// Hooks into the forward pass: every linear's input, attention q/k/v, hidden states.
#pragma once

#include <cstdint>
#include <string>

namespace st::model {

// Called synchronously from the forward pass, on the thread that called forward().
// Pointers are valid only during the call.
class Observer {
 public:
  virtual ~Observer() = default;
  // The input x[rows, cols] of linear `name` (e.g. "model.layers.0.self_attn.q_proj"). For MoE
  // experts, the rows routed to that expert only (possibly none: not called).
  virtual void on_linear_input(const std::string& /*name*/, const float* /*x*/, int64_t /*rows*/, int64_t /*cols*/) {}
  // Whether on_attention should be called (MLA's absorbed q costs an extra GEMM).
  virtual bool wants_attention() const { return false; }
  // Attention tensors of block `block` (e.g. "model.layers.0.self_attn"), x[rows, heads, dim],
  // which the observer may modify in place (attention quantization):
  //   standard attention: "q", "k" after RoPE; "v" (before the GQA repeat)
  //   MLA: "q_absorbed" = q_nope · W_UK per head [rows, heads, kv_lora_rank] (read only),
  //        "kv_latent" = compressed KV after kv_a_layernorm [rows, 1, kv_lora_rank]
  virtual void on_attention(const std::string& /*block*/, const char* /*what*/, float* /*x*/, int64_t /*rows*/,
                            int64_t /*heads*/, int64_t /*dim*/) {}
  // hidden_states.i as HF reports them: 0 = embeddings, i = after decoder layer i-1, and the
  // last (i = layers) with the final norm applied.
  virtual void on_hidden(int /*index*/, const float* /*x*/, int64_t /*rows*/, int64_t /*cols*/) {}
};

}  // namespace st::model
