// The checks of one quantized checkpoint (a Unit), shared by checker.cpp (helpers, the order of
// the checks), structure.cpp, arithmetic.cpp and numerics.cpp. Not part of the library's interface.
#pragma once

#include <array>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "libst/verify/internal.hpp"
#include "libst/verify/smoothing.hpp"

namespace st::verify_detail {

inline const std::set<std::string> kLinearTypes = {"W8A8", "W8A8S", "W8A8SC", "W8A8_DYNAMIC"};
inline const std::set<std::string> kLinearSuffixes = {"weight",      "weight_scale", "weight_offset", "deq_scale",
                                                      "quant_bias",  "input_scale",  "input_offset",  "bias",
                                                      "index",       "info"};
constexpr int kMaxListed = 3;  // elements named per tensor before "and N more"

// "a.b.c" -> {"a.b", "c"}; no dot: {"", name}.
std::pair<std::string, std::string> split_last(const std::string& name);
std::string shape_str(const std::vector<int64_t>& s);  // "[2,3]"
std::string fmt(double v);                              // %.7g
double roundoff(DType t);  // half an ulp, relative, of a value stored in t (F32 for the others)
// config.json values, tolerant of a key of the wrong type (treated as absent).
int64_t config_int(const nlohmann::json& c, const char* key, int64_t fallback);
// The float dtype of the model the checkpoint was quantized from.
DType model_dtype(const Unit& u);
// A tensor as fp32 (empty when its dtype is not a number type).
std::vector<float> read_f32(const Unit& u, const Loc& l);
float bits_to_float(uint32_t b);
// A W8A8SC .info tensor (I64 [5], checked by the caller) copied out of the mapping.
std::array<int64_t, 5> read_info(const Unit& u, const Loc& info);
// A quantized linear's int8 weight [n, k] (n, k from its layout): a view of the stored tensor, or
// for W8A8SC the tile stream decoded into buf. Error: the stream does not decode.
Result<const int8_t*> int8_weight(const Unit& u, const std::string& prefix, const std::string& type, int64_t n,
                                  int64_t k, std::vector<int8_t>& buf);

// One source tensor's rows inside a part tensor (an entry of st-shard's st.shard.recipe).
struct Piece {
  std::string source;  // tensor name in the unsharded checkpoint
  std::string kind;    // replicate | rank0 | split | rows (source rows r0.. r0+nr, one section of a fused tensor)
  int dim = 0;
  int64_t chunks = 1;
  std::vector<int64_t> shape;  // the source's shape
  int64_t at = 0;              // first row (dim 0) inside the part tensor
  int64_t r0 = 0, nr = 0;      // kind rows only
};

struct Recipe {
  bool present = false;
  int tp = 1, rank = 0;
  std::map<std::string, std::vector<Piece>> into;  // part tensor -> pieces
  std::set<std::string> sources;
};

// The pieces of the part's st-shard recipe (read by verify.cpp into u.shard, libst/shard/recipe.hpp);
// absent (present = false) when the part was not written by st-shard or its recipe is malformed
// (a problem).
Recipe parse_recipe(const Unit& u, Sink& sink);

// The block of a 2-D (or 1-D) source that a rank holds: rows r0.. r0+nr, columns c0.. c0+nc.
struct Slice {
  int64_t r0 = 0, nr = 0, c0 = 0, nc = 0;
};
Slice slice_of(const Piece& p, int rank, int tp);

struct Linear {
  std::string prefix, type;
  std::map<std::string, const Loc*> m;  // suffix -> tensor
  int64_t n = -1, k = -1;
  bool ok = true;  // dtypes and shapes right: arithmetic may read it
  const Loc* get(const char* s) const {
    const auto it = m.find(s);
    return it == m.end() ? nullptr : it->second;
  }
};

class UnitChecker {
 public:
  UnitChecker(const Unit& u, CheckContext& ctx) : u_(u), ctx_(ctx), sink_(ctx.sink), dt_(model_dtype(u)) {}
  void run();

 private:
  void problem(const char* check, const std::string& tensor, std::string msg) {
    sink_.add(check, tensor.empty() ? u_.desc_file : u_.file_of(tensor), tensor, std::move(msg));
  }
  void describe_problem(const std::string& tensor, std::string msg) { sink_.add("structure", u_.desc_file, tensor, std::move(msg)); }
  std::string type_of(const std::string& name) const { return u_.desc->type_of(name).value_or(""); }
  bool expect(const std::string& name, DType dtype, const std::vector<int64_t>& shape, const std::string& why = {});
  void check_description();
  void collect_linears();
  void check_linear_layout(Linear& l);
  void check_linear_values(Linear& l);
  std::optional<std::vector<float>> known_bias(const Linear& l);
  void check_numerics(const Linear& l, const int8_t* wq, const std::vector<float>& ws, DType ws_dtype);
  // The float weights to compare with: W, or smoothing's W' with each column's and row's
  // relative uncertainty (null: exact).
  struct Reference {
    const float* w;
    int64_t stride;
    const double* col_err = nullptr;
    const double* row_err = nullptr;
  };
  void compare_weights(const std::string& name, const std::string& type, const std::string& tensor, Reference W,
                       const int8_t* wq, const float* ws, int64_t rows, int64_t cols, DType ws_dt);
  bool compare_smoothed_float(const std::string& name, const Loc& l);
  void start_smoothing();
  std::vector<Piece> pieces_of(const std::string& name) const;
  void compare_float(const std::string& name, const Loc& l);
  void check_fused_groups();
  void check_attention();
  void check_float_tensors();

  const Unit& u_;
  CheckContext& ctx_;
  Sink& sink_;
  DType dt_;
  std::vector<Linear> linears_;
  std::map<std::string, size_t> linear_index_;
  Recipe recipe_;
  std::unique_ptr<SmoothRebuild> smooth_;  // a smoothed single checkpoint against its float model
  bool skip_numerics_ = false;             // a smoothed checkpoint that cannot be rebuilt here
};

}  // namespace st::verify_detail
