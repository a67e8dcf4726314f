// Path and filesystem helpers (POSIX stat/opendir, ifstream reads).
#include "libst/core/paths.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace st {

bool is_directory(const std::string& path) {
  struct stat sb {};
  return ::stat(path.c_str(), &sb) == 0 && S_ISDIR(sb.st_mode);
}

bool is_regular_file(const std::string& path) {
  struct stat sb {};
  return ::stat(path.c_str(), &sb) == 0 && S_ISREG(sb.st_mode);
}

bool path_exists(const std::string& path) {
  struct stat sb {};
  return ::stat(path.c_str(), &sb) == 0;
}

mode_t file_mode(const std::string& path) {
  struct stat sb {};
  return ::stat(path.c_str(), &sb) == 0 ? sb.st_mode & 0777 : 0644;
}

std::vector<std::string> list_directory(const std::string& dir) {
  std::vector<std::string> names;
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d))
      if (e->d_name[0] != '.') names.emplace_back(e->d_name);
    closedir(d);
  }
  std::sort(names.begin(), names.end());
  return names;
}

Result<int> open_regular(const std::string& path) {
  // O_NONBLOCK: opening a FIFO without a writer would otherwise wait forever.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return make_error(Errc::io, std::string("cannot open: ") + std::strerror(errno), path);
  struct stat sb {};
  const char* why = nullptr;
  if (fstat(fd, &sb) != 0) why = "cannot stat";
  else if (S_ISDIR(sb.st_mode)) why = "is a directory, not a file";
  else if (!S_ISREG(sb.st_mode)) why = "not a regular file (a pipe, device or socket)";
  else if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) != 0) why = "cannot make blocking";
  if (why) {
    ::close(fd);
    return make_error(Errc::io, why, path);
  }
  return fd;
}

Result<std::string> read_file_text(const std::string& path) {
  ST_ASSIGN(const int fd, open_regular(path));
  std::string out;
  char buf[1 << 16];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int e = errno;
      ::close(fd);
      return make_error(Errc::io, std::string("read failed: ") + std::strerror(e), path);
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

std::string base_name(const std::string& path) {
  std::string p = path;
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  const auto slash = p.rfind('/');
  return slash == std::string::npos ? p : p.substr(slash + 1);
}

std::string dir_name(const std::string& path) {
  const auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

bool glob_match(const std::string& glob, const std::string& name) { return fnmatch(glob.c_str(), name.c_str(), 0) == 0; }

}  // namespace st
