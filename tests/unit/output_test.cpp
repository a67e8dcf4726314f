// The output policy (open_output): atomic files and directories, refusals of outputs over inputs,
// the lock, the exchange and journaled commits, an interrupted run's cleanup, shown paths.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>

#include "libst/format/output.hpp"
#include "st_test_util.hpp"

namespace {

using st_test::TempDir;

// A pid no process has: above the kernel's limit.
std::string dead_pid() {
  std::ifstream f("/proc/sys/kernel/pid_max");
  long max = 4194304;
  f >> max;
  return std::to_string(max + 1);
}

st::OutputRequest request(const std::string& path, bool force = false, std::vector<std::string> inputs = {}) {
  return st::OutputRequest{path, false, force, std::move(inputs), {}};
}

// Opens `path`, fills it as a directory with one file, commits.
::testing::AssertionResult write_dir(const std::string& path, const std::string& text, bool force) {
  auto out = st::open_output(request(path, force));
  if (!out) return ::testing::AssertionFailure() << out.error().str();
  st_test::write_bytes((*out)->directory() + "/a.txt", text);
  auto c = (*out)->commit();
  if (!c) return ::testing::AssertionFailure() << c.error().str();
  return ::testing::AssertionSuccess();
}

TEST(OutputFile, AppearsOnlyOnCommit) {
  TempDir dir;
  const std::string path = dir / "out.bin";
  auto f = st::OutputFile::create(path);
  ASSERT_TRUE(f);
  const std::string small = "hello ";
  const std::vector<uint8_t> big = st_test::pattern(3 << 20, 7);  // bypasses the buffer
  ASSERT_TRUE((*f)->write(small.data(), small.size()));
  ASSERT_TRUE((*f)->write(big.data(), big.size()));
  EXPECT_FALSE(st_test::exists(path));
  EXPECT_EQ((*f)->bytes_written(), small.size() + big.size());
  ASSERT_TRUE((*f)->commit());
  const std::string got = st_test::read_bytes(path);
  ASSERT_EQ(got.size(), small.size() + big.size());
  EXPECT_EQ(got.substr(0, small.size()), small);
  EXPECT_EQ(std::memcmp(got.data() + small.size(), big.data(), big.size()), 0);
  EXPECT_EQ(st_test::list_all(dir.path()), std::vector<std::string>{"out.bin"});
}

TEST(OutputFile, AbandonedLeavesNothing) {
  TempDir dir;
  {
    auto f = st::OutputFile::create(dir / "out.bin");
    ASSERT_TRUE(f);
    ASSERT_TRUE((*f)->write("x", 1));
  }
  EXPECT_TRUE(st_test::list_all(dir.path()).empty());
}

TEST(OutputFile, CopyKeepsTheSourcePermissionsThroughASymlink) {
  TempDir dir;
  st_test::write_bytes(dir / "secret", "content");
  ASSERT_EQ(::chmod((dir / "secret").c_str(), 0600), 0);
  ASSERT_EQ(::symlink("secret", (dir / "link").c_str()), 0);
  ASSERT_TRUE(st::copy_file(dir / "link", dir / "copy"));
  EXPECT_EQ(st_test::read_bytes(dir / "copy"), "content");
  struct stat sb {};
  ASSERT_EQ(::lstat((dir / "copy").c_str(), &sb), 0);
  EXPECT_TRUE(S_ISREG(sb.st_mode));
  EXPECT_EQ(sb.st_mode & 0777, 0600u);
  auto bad = st::copy_file(dir / "missing", dir / "c");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().file, dir / "missing");
  EXPECT_FALSE(st_test::exists(dir / "c"));
}

TEST(Output, DirectoryAppearsOnlyOnCommitAndLeavesNothingElse) {
  TempDir dir;
  const std::string path = dir / "model";
  {
    auto out = st::open_output(request(path));
    ASSERT_TRUE(out) << out.error().str();
    st_test::write_bytes((*out)->directory() + "/a.txt", "a");
    EXPECT_FALSE(st_test::exists(path));
    ASSERT_TRUE((*out)->commit());
  }
  EXPECT_EQ(st_test::list_all(path), std::vector<std::string>{"a.txt"});
  EXPECT_EQ(st_test::list_all(dir.path()), std::vector<std::string>{"model"});  // no lock, no temporary
}

TEST(Output, AbandonedLeavesNothing) {
  TempDir dir;
  {
    auto out = st::open_output(request(dir / "model"));
    ASSERT_TRUE(out);
    st_test::write_bytes((*out)->directory() + "/a.txt", "a");
  }
  EXPECT_TRUE(st_test::list_all(dir.path()).empty());
}

TEST(Output, ExistingNeedsForceAndIsReplacedWhole) {
  for (const char* exchange : {"0", "1"}) {
    SCOPED_TRACE(std::string("ST_TEST_NO_RENAME_EXCHANGE=") + exchange);
    ::setenv("ST_TEST_NO_RENAME_EXCHANGE", exchange, 1);
    TempDir dir;
    const std::string path = dir / "model";
    st_test::make_dir(path);
    st_test::write_bytes(path + "/old.txt", "old");
    auto refused = st::open_output(request(path + "/"));
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().code, st::Errc::exists);
    EXPECT_EQ(refused.error().file, path + "/");  // as typed
    ASSERT_TRUE(write_dir(path, "new", true));
    EXPECT_EQ(st_test::list_all(path), std::vector<std::string>{"a.txt"});
    EXPECT_EQ(st_test::read_bytes(path + "/a.txt"), "new");
    EXPECT_EQ(st_test::list_all(dir.path()), std::vector<std::string>{"model"});
  }
  ::unsetenv("ST_TEST_NO_RENAME_EXCHANGE");
}

TEST(Output, ExistenceIsCheckedAgainAtCommit) {
  TempDir dir;
  const std::string path = dir / "model";
  {
    auto out = st::open_output(request(path));
    ASSERT_TRUE(out);
    st_test::write_bytes((*out)->directory() + "/a.txt", "mine");
    st_test::make_dir(path);  // someone else made it meanwhile
    st_test::write_bytes(path + "/theirs.txt", "theirs");
    auto c = (*out)->commit();
    ASSERT_FALSE(c);
    EXPECT_EQ(c.error().code, st::Errc::exists);
    EXPECT_EQ(c.error().file, path);
  }
  EXPECT_EQ(st_test::list_all(path), std::vector<std::string>{"theirs.txt"});
  EXPECT_EQ(st_test::list_all(dir.path()), std::vector<std::string>{"model"});
}

TEST(Output, FileOutputCommitsItsCompanionsAndMayReplaceADirectory) {
  TempDir dir;
  const std::string path = dir / "stats.safetensors";
  st_test::make_dir(path);
  auto out = st::open_output(request(path, true));
  ASSERT_TRUE(out);
  const std::string f = (*out)->file();
  EXPECT_EQ(st::shown_path(f), path);
  EXPECT_EQ(st::shown_path(f + ".xxh3"), path + ".xxh3");
  ASSERT_TRUE(st::write_file(f, "data"));
  ASSERT_TRUE(st::write_file(f + ".xxh3", "sum"));
  ASSERT_TRUE((*out)->commit());
  out->reset();
  EXPECT_EQ(st_test::read_bytes(path), "data");
  EXPECT_EQ(st_test::read_bytes(path + ".xxh3"), "sum");
  EXPECT_EQ(st_test::list_all(dir.path()), (std::vector<std::string>{"stats.safetensors", "stats.safetensors.xxh3"}));
}

TEST(Output, DashIsStdoutOnlyForAStream) {
  auto dir_tool = st::open_output(request("-"));
  ASSERT_FALSE(dir_tool);
  EXPECT_EQ(dir_tool.error().code, st::Errc::usage);
  EXPECT_FALSE(st_test::exists("-"));
  auto stream = st::open_output(st::OutputRequest{"-", true, false, {}, {}});
  if (::isatty(1)) {
    ASSERT_FALSE(stream);  // binary output to a terminal
    EXPECT_NE(stream.error().message.find("terminal"), std::string::npos);
  } else {
    ASSERT_TRUE(stream);
    EXPECT_TRUE((*stream)->is_stdout());
    EXPECT_EQ((*stream)->file(), "-");
    EXPECT_TRUE((*stream)->commit());
  }
}

// The refusal of an output that is, contains or lies inside an input, in several spellings.
TEST(Output, RefusesEveryOutputOverAnInput) {
  TempDir dir;
  const std::string m = dir / "m", weights = m + "/model.safetensors";
  st_test::make_dir(m);
  st_test::make_dir(dir / "x");
  st_test::write_bytes(weights, "weights");
  ASSERT_EQ(::symlink("m", (dir / "lm").c_str()), 0);
  ASSERT_EQ(::symlink("m/model.safetensors", (dir / "lw.safetensors").c_str()), 0);
  ASSERT_EQ(::link(weights.c_str(), (dir / "hard.safetensors").c_str()), 0);
  struct Case {
    std::string out, input, how;
  };
  const std::vector<Case> cases = {
      {m, m, "is"},
      {m + "/", m, "is"},
      {dir / "x/../m", m, "is"},
      {dir / "lm", m, "is"},                      // a symlink to the input
      {m, dir / "lm", "is"},                      // the input through a symlink
      {dir / "lw.safetensors", dir / "lw.safetensors", "is"},  // the input's own symlink entry
      {weights, dir / "lw.safetensors", "is"},    // the symlink's target
      {dir / "hard.safetensors", weights, "is"},  // a hard link
      {dir.path(), m, "contains"},
      {dir.path() + "/.", weights, "contains"},
      {weights, m, "lies inside"},
      {dir / "lm/stats.safetensors", m, "lies inside"},
      {dir / "x/../m/new", dir / "lm", "lies inside"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.out + " over " + c.input);
    auto out = st::open_output(request(c.out, true, {"-", "", c.input}));
    ASSERT_FALSE(out);
    EXPECT_EQ(out.error().code, st::Errc::usage);
    EXPECT_EQ(out.error().file, c.out);
    EXPECT_NE(out.error().message.find("the output " + c.how + " the input '" + c.input + "'"), std::string::npos)
        << out.error().message;
  }
  EXPECT_EQ(st_test::read_bytes(weights), "weights");
  EXPECT_EQ(st_test::list_all(dir.path()),
            (std::vector<std::string>{"hard.safetensors", "lm", "lw.safetensors", "m", "x"}));
  EXPECT_EQ(st_test::list_all(m), std::vector<std::string>{"model.safetensors"});
  // A sibling is fine, and so is an input that does not exist.
  EXPECT_TRUE(st::open_output(request(dir / "q", false, {m, weights, dir / "missing"})));
}

TEST(Output, ASecondRunIntoTheSameOutputIsRefusedWhileTheFirstRuns) {
  TempDir dir;
  const std::string path = dir / "model";
  auto first = st::open_output(request(path));
  ASSERT_TRUE(first);
  for (const std::string& spelling : {path, path + "/", dir.path() + "/./model"}) {
    auto second = st::open_output(request(spelling, true));
    ASSERT_FALSE(second);
    EXPECT_EQ(second.error().code, st::Errc::busy);
    EXPECT_NE(second.error().message.find("in use by another run (pid " + st::pid_text() + ")"), std::string::npos)
        << second.error().message;
  }
  first->reset();
  EXPECT_TRUE(write_dir(path, "a", false));
}

TEST(Output, AnInterruptedRunsTemporariesAreRemovedAndReported) {
  TempDir dir;
  const std::string dead = dead_pid();
  const std::string tmp = dir / (".model.st-tmp-" + dead), old = dir / (".model.st-old-" + dead);
  st_test::make_dir(tmp);
  st_test::write_bytes(tmp + "/big.safetensors", "partial");
  st_test::write_bytes(old, "old");
  st_test::write_bytes(dir / ".other.st-tmp-1", "not ours");  // another output's
  std::vector<std::string> notes;
  auto r = request(dir / "model");
  r.note = [&](const std::string& n) { notes.push_back(n); };
  auto out = st::open_output(r);
  ASSERT_TRUE(out);
  ASSERT_EQ(notes.size(), 2u);
  EXPECT_NE(notes[0].find("left by an interrupted run (pid " + dead + ")"), std::string::npos) << notes[0];
  EXPECT_FALSE(st_test::exists(tmp));
  EXPECT_FALSE(st_test::exists(old));
  EXPECT_TRUE(st_test::exists(dir / ".other.st-tmp-1"));
}

// A run killed between the two renames of a journaled replacement: the next run restores the
// old output (killed before the new one was in place) or completes the replacement (after).
TEST(Output, AnInterruptedReplacementIsRolledBackOrCompleted) {
  for (const bool new_in_place : {false, true}) {
    SCOPED_TRACE(new_in_place ? "completed" : "rolled back");
    TempDir dir;
    const std::string dead = dead_pid(), path = dir / "model";
    st_test::make_dir(dir / (".model.st-old-" + dead));
    st_test::write_bytes(dir / (".model.st-old-" + dead) + "/a.txt", "old");
    if (new_in_place) {
      st_test::make_dir(path);
      st_test::write_bytes(path + "/a.txt", "new");
    }
    st_test::write_bytes(dir / ".model.st-journal", dead + "\n");
    std::vector<std::string> notes;
    auto r = request(path);
    r.note = [&](const std::string& n) { notes.push_back(n); };
    auto out = st::open_output(r);
    ASSERT_FALSE(out);  // the output is back, and -f was not given
    EXPECT_EQ(out.error().code, st::Errc::exists);
    ASSERT_EQ(notes.size(), 1u);
    EXPECT_NE(notes[0].find(new_in_place ? "completed the replacement of '" + path + "' that an interrupted run (pid " +
                                                dead + ") began"
                                          : "restored the previous '" + path + "', which an interrupted run (pid " + dead +
                                                ") was replacing"),
              std::string::npos)
        << notes[0];
    EXPECT_EQ(st_test::read_bytes(path + "/a.txt"), new_in_place ? "new" : "old");
    EXPECT_EQ(st_test::list_all(dir.path()), std::vector<std::string>{"model"});
  }
}

// Killed after writing the journal, before the first rename: the output was never touched.
TEST(Output, AJournalWithoutAReplacementIsRemoved) {
  TempDir dir;
  const std::string dead = dead_pid(), path = dir / "model";
  st_test::make_dir(path);
  st_test::write_bytes(dir / ".model.st-journal", dead + "\n");
  std::vector<std::string> notes;
  auto r = request(path, true);
  r.note = [&](const std::string& n) { notes.push_back(n); };
  ASSERT_TRUE(st::open_output(r));
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_NE(notes[0].find("removed '" + dir.path() + "/.model.st-journal', left by an interrupted run (pid " + dead),
            std::string::npos)
      << notes[0];
  EXPECT_EQ(st_test::list_all(dir.path()), std::vector<std::string>{"model"});
}

TEST(Output, PathsInsideTheTemporaryAreShownAsTyped) {
  TempDir dir;
  auto out = st::open_output(request(dir / "nowhere/parts/"));
  ASSERT_FALSE(out);  // no such parent
  EXPECT_EQ(out.error().code, st::Errc::io);
  EXPECT_EQ(out.error().file, dir / "nowhere/parts/");
  auto ok = st::open_output(request(dir / "parts/"));
  ASSERT_TRUE(ok);
  const std::string t = (*ok)->directory();
  EXPECT_NE(t, dir / "parts");
  EXPECT_EQ(st::shown_path(t + "/part0-of-2/model.safetensors"), dir / "parts/part0-of-2/model.safetensors");
  EXPECT_EQ(st::shown_path(dir / "elsewhere"), dir / "elsewhere");
}

TEST(ScratchDir, IsPrivateRemovedAndCleansDeadRuns) {
  TempDir dir;
  ::setenv("TMPDIR", dir.path().c_str(), 1);
  const std::string dead = dir / ("st-merged-" + dead_pid() + "-0");
  st_test::make_dir(dead);
  std::vector<std::string> notes;
  std::string path;
  {
    auto s = st::ScratchDir::create("st-merged", [&](const std::string& n) { notes.push_back(n); });
    ASSERT_TRUE(s);
    path = (*s)->path();
    EXPECT_TRUE(st_test::exists(path));
    EXPECT_EQ(path.rfind(dir / ("st-merged-" + st::pid_text() + "-"), 0), 0u) << path;
  }
  ::unsetenv("TMPDIR");
  EXPECT_FALSE(st_test::exists(path));
  EXPECT_FALSE(st_test::exists(dead));
  EXPECT_EQ(notes.size(), 1u);
}

}  // namespace
