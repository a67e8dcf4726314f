// The output-versus-inputs check: paths compared with symlinks resolved, nodes by device and inode.
#include "libst/format/output_inputs.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>

#include "libst/core/paths.hpp"

namespace st {
namespace {

// realpath(3) of an existing path; "" when it cannot be resolved.
std::string real_path(const std::string& p) {
  char buf[PATH_MAX];
  return ::realpath(p.c_str(), buf) ? std::string(buf) : std::string();
}

std::string without_trailing_slashes(std::string p) {
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  return p;
}

// `inner` is strictly below the directory `outer` (both resolved, absolute).
bool is_below(const std::string& inner, const std::string& outer) {
  if (outer == "/") return inner.size() > 1;
  return inner.size() > outer.size() && inner.compare(0, outer.size(), outer) == 0 && inner[outer.size()] == '/';
}

bool same_node(const struct stat& a, const struct stat& b) { return a.st_dev == b.st_dev && a.st_ino == b.st_ino; }

// True when `dir` or one of its ancestors is the node `node` (a bind mount or other spelling).
bool has_ancestor(std::string dir, const struct stat& node) {
  for (;;) {
    struct stat sb {};
    if (::stat(dir.c_str(), &sb) == 0 && same_node(sb, node)) return true;
    if (dir == "/" || dir[0] != '/') return false;
    dir = dir_name(dir);
  }
}

// Every entry whose replacement would take the input away: the entry it is named by, each
// symlink it leads through, and its fully resolved path.
std::vector<std::string> entries_of_input(const std::string& input) {
  std::vector<std::string> out;
  auto e = path_entry(input);
  for (int hops = 0; e && hops < 40; ++hops) {
    out.push_back(e->path());
    struct stat sb {};
    if (::lstat(out.back().c_str(), &sb) != 0 || !S_ISLNK(sb.st_mode)) break;
    char target[PATH_MAX];
    const ssize_t n = ::readlink(out.back().c_str(), target, sizeof target - 1);
    if (n <= 0) break;
    const std::string t(target, static_cast<size_t>(n));
    e = path_entry(t[0] == '/' ? t : e->parent + "/" + t);
  }
  const std::string real = real_path(input);
  if (!real.empty()) out.push_back(real);
  return out;
}

}  // namespace

Result<PathEntry> path_entry(const std::string& path) {
  const std::string p = without_trailing_slashes(path);
  const std::string name = base_name(p);
  if (name == "." || name == ".." || name == "/") {
    const std::string real = real_path(p);
    if (real.empty()) return make_error(Errc::io, std::string("cannot resolve: ") + std::strerror(errno), path);
    if (real == "/") return make_error(Errc::usage, "the root directory cannot be an output", path);
    return PathEntry{dir_name(real), base_name(real)};
  }
  const std::string parent = real_path(dir_name(p));
  if (parent.empty())
    return make_error(Errc::io, "cannot create the output in '" + dir_name(p) + "': " + std::strerror(errno), path);
  return PathEntry{parent, name};
}

Status refuse_inputs(const PathEntry& out, const std::vector<std::string>& inputs, const std::string& shown) {
  const std::string o = out.path();
  struct stat o_link {}, o_node {};
  const bool o_exists = ::lstat(o.c_str(), &o_link) == 0;
  const bool o_resolves = ::stat(o.c_str(), &o_node) == 0;
  for (const auto& in : inputs) {
    struct stat in_node {};
    if (in.empty() || in == "-" || ::stat(in.c_str(), &in_node) != 0) continue;
    auto refuse = [&](const std::string& how) {
      return make_error(Errc::usage, "the output " + how + " the input '" + in + "'", shown);
    };
    for (const auto& e : entries_of_input(in)) {
      if (e == o) return refuse("is");
      if (is_below(e, o)) return refuse("contains");
      if (is_below(o, e)) return refuse("lies inside");
    }
    if (o_resolves && same_node(o_node, in_node)) return refuse("is");  // a hard link, a bind mount
    const std::string in_real = real_path(in);
    if (o_exists && S_ISDIR(o_link.st_mode) && !in_real.empty() && has_ancestor(dir_name(in_real), o_link))
      return refuse("contains");
    if (S_ISDIR(in_node.st_mode) && has_ancestor(out.parent, in_node)) return refuse("lies inside");
  }
  return Status{};
}

}  // namespace st
