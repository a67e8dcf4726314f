// Part-folder names and the rule for a valid part set (see parts.hpp).
#include "libst/format/parts.hpp"

#include <algorithm>
#include <cstdint>

#include "libst/core/paths.hpp"

namespace st {

namespace {

constexpr std::string_view kPrefix = "part", kInfix = "-of-";

// Length of the run of ASCII digits at the start of s.
size_t digits(std::string_view s) {
  size_t n = 0;
  while (n < s.size() && s[n] >= '0' && s[n] <= '9') ++n;
  return n;
}

// A decimal number of at most 9 digits (so it fits an int), else -1.
int64_t number(std::string_view d) {
  if (d.size() > 9) return -1;
  int64_t v = 0;
  for (const char c : d) v = v * 10 + (c - '0');
  return v;
}

// Splits "part<a>-of-<b>" into its two digit runs; false when the name has another shape.
bool split_name(std::string_view name, std::string_view& a, std::string_view& b) {
  if (name.substr(0, kPrefix.size()) != kPrefix) return false;
  std::string_view rest = name.substr(kPrefix.size());
  const size_t na = digits(rest);
  if (na == 0 || rest.substr(na, kInfix.size()) != kInfix) return false;
  a = rest.substr(0, na);
  rest = rest.substr(na + kInfix.size());
  const size_t nb = digits(rest);
  if (nb == 0 || nb != rest.size()) return false;
  b = rest;
  return true;
}

}  // namespace

std::string part_name(int rank, int count) { return "part" + std::to_string(rank) + "-of-" + std::to_string(count); }

bool looks_like_part_name(std::string_view name) {
  std::string_view a, b;
  return split_name(name, a, b);
}

Result<PartFolder> parse_part_name(std::string_view name) {
  std::string_view a, b;
  if (!split_name(name, a, b)) return make_error(Errc::format, "not a part folder name (part{rank}-of-{count})");
  const int64_t rank = number(a), count = number(b);
  if (count < 1 || count > kMaxParts)
    return make_error(Errc::format, "part count " + std::string(b.substr(0, 24)) + " is not in 1.." +
                                        std::to_string(kMaxParts));
  if (rank < 0 || rank >= count)
    return make_error(Errc::format, "rank " + std::string(a.substr(0, 24)) + " is out of range: ranks of " +
                                        std::to_string(count) + " parts are 0.." + std::to_string(count - 1));
  const std::string canonical = part_name(static_cast<int>(rank), static_cast<int>(count));
  if (name != canonical)
    return make_error(Errc::format, "not a canonical part folder name: expected '" + canonical +
                                        "' (decimal ranks from 0, no leading zeros)");
  return PartFolder{canonical, static_cast<int>(rank), static_cast<int>(count)};
}

PartScan scan_part_folders(const std::string& dir) {
  PartScan scan;
  for (const auto& n : list_directory(dir)) {
    if (!looks_like_part_name(n)) continue;
    const std::string path = dir + "/" + n;
    auto p = parse_part_name(n);
    if (!p) scan.errors.push_back(std::move(p.error()).in_file(path));
    else if (!is_directory(path)) scan.errors.push_back(make_error(Errc::format, "named like a part folder but not a directory", path));
    else scan.folders.push_back(std::move(p.value()));
  }
  std::sort(scan.folders.begin(), scan.folders.end(), [](const PartFolder& x, const PartFolder& y) {
    return x.rank != y.rank ? x.rank < y.rank : x.count < y.count;
  });
  return scan;
}

Status check_part_set(const std::string& dir, const PartScan& scan) {
  if (!scan.errors.empty()) return scan.errors.front();
  if (scan.folders.empty()) return Status{};
  const int n = scan.folders.front().count;
  for (const auto& p : scan.folders)
    if (p.count != n)
      return make_error(Errc::format, "part folder of a different split ('" + scan.folders.front().name + "' is 'of-" +
                                          std::to_string(n) + "')", dir + "/" + p.name);
  // Canonical names of one count are distinct, so ranks 0..n-1 are present exactly when n folders are.
  for (int r = 0; r < n; ++r)
    if (static_cast<size_t>(r) >= scan.folders.size() || scan.folders[r].rank != r)
      return make_error(Errc::format, "part folder missing (" + std::to_string(scan.folders.size()) + " of " +
                                          std::to_string(n) + " present)", dir + "/" + part_name(r, n));
  return Status{};
}

Result<std::vector<PartFolder>> part_folders(const std::string& dir) {
  PartScan scan = scan_part_folders(dir);
  ST_CHECK(check_part_set(dir, scan));
  return std::move(scan.folders);
}

}  // namespace st
