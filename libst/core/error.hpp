// Errors as values: a failure carries its file and tensor up to the one place that prints it.
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace st {

// What kind of failure; every kind maps to exit code 2 in the tools.
enum class Errc {
  io,           // open/read/write/rename failed
  format,       // malformed input file
  usage,        // bad option or argument combination
  unsupported,  // valid input we do not handle (architecture, dtype, layout)
  numeric,      // NaN/Inf or out-of-range values where they cannot be
  exists,       // output exists and -f was not given
  busy,         // another run is writing the same output
  broken_pipe,  // stdout closed by the reader: the tool exits quietly
};

// Which rule a malformed input breaks, for callers and tests that branch on it (as the safetensors
// crate's SafeTensorError: HeaderTooSmall, HeaderTooLarge, InvalidOffset, ...); the message says
// the same for people. Set on Errc::format errors of the file formats; none elsewhere.
enum class Fault : unsigned char {
  none,
  too_short,          // fewer than 8 bytes: no header length                  (HeaderTooSmall)
  header_too_large,   // header length above 100,000,000 bytes                  (HeaderTooLarge)
  header_past_end,    // the header runs past the end of the file or stream     (InvalidHeaderLength)
  invalid_utf8,       // text that is not UTF-8                                 (InvalidHeader)
  invalid_json,       // not JSON, or JSON of the wrong shape                   (InvalidHeaderDeserialization)
  too_deep,           // nested deeper than the format allows
  duplicate_key,      // the same name twice in one object
  invalid_entry,      // a tensor entry without dtype / shape / data_offsets of the right kinds
  unknown_dtype,      // a dtype outside the 22 known ones                       (InvalidTensorView)
  size_overflow,      // shape x dtype overflows 64 bits                         (ValidationOverflow)
  length_mismatch,    // data_offsets span other than shape x dtype bytes        (TensorInvalidInfo)
  invalid_offset,     // offsets that do not tile the buffer from 0: hole, overlap, begin after end (InvalidOffset)
  incomplete_buffer,  // fewer or more buffer bytes than the tensors need        (MetadataIncompleteBuffer)
  invalid_metadata,   // a __metadata__ that is not a string -> string map
};
// "too_short", "header_too_large", ... (the enumerator's name).
const char* fault_name(Fault f);

struct Error {
  Errc code = Errc::format;
  std::string message;
  std::string file;
  std::string tensor;
  Fault fault = Fault::none;

  // One line: "'FILE': tensor 'NAME': MESSAGE" (parts omitted when empty).
  std::string str() const;

  Error& in_file(std::string f) & {
    if (file.empty()) file = std::move(f);
    return *this;
  }
  Error&& in_file(std::string f) && { return std::move(in_file(std::move(f))); }
  Error& in_tensor(std::string t) & {
    if (tensor.empty()) tensor = std::move(t);
    return *this;
  }
  Error&& in_tensor(std::string t) && { return std::move(in_tensor(std::move(t))); }
};

inline Error make_error(Errc code, std::string message, std::string file = {}, std::string tensor = {}) {
  return Error{code, std::move(message), std::move(file), std::move(tensor)};
}
// An Errc::format error breaking the rule `fault`.
inline Error make_fault(Fault fault, std::string message, std::string file = {}, std::string tensor = {}) {
  return Error{Errc::format, std::move(message), std::move(file), std::move(tensor), fault};
}

// Result<T>: a T or an Error. Result<void> is a status.
template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT(google-explicit-constructor)
  Result(Error error) : v_(std::move(error)) {}  // NOLINT(google-explicit-constructor)

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  Error& error() & { return std::get<1>(v_); }
  const Error& error() const& { return std::get<1>(v_); }
  Error&& error() && { return std::get<1>(std::move(v_)); }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : err_(std::move(error)), failed_(true) {}  // NOLINT(google-explicit-constructor)

  bool ok() const { return !failed_; }
  explicit operator bool() const { return ok(); }
  Error& error() & { return err_; }
  const Error& error() const& { return err_; }
  Error&& error() && { return std::move(err_); }

 private:
  Error err_;
  bool failed_ = false;
};

using Status = Result<void>;

}  // namespace st

// Propagate a failed Status/Result from the enclosing function.
#define ST_CHECK(expr)                                   \
  do {                                                   \
    auto st_check_result_ = (expr);                      \
    if (!st_check_result_) return std::move(st_check_result_).error(); \
  } while (0)

#define ST_CONCAT_INNER(a, b) a##b
#define ST_CONCAT(a, b) ST_CONCAT_INNER(a, b)
// ST_ASSIGN(auto x, f()): declare x from a Result, or return its error.
#define ST_ASSIGN(decl, expr) ST_ASSIGN_IMPL(ST_CONCAT(st_assign_, __LINE__), decl, expr)
#define ST_ASSIGN_IMPL(tmp, decl, expr)                  \
  auto tmp = (expr);                                     \
  if (!tmp) return std::move(tmp).error();               \
  decl = std::move(tmp).value()
