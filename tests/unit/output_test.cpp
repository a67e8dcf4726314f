// Atomic outputs: OutputFile and OutputDir never leave a partial file at the final path.
#include <gtest/gtest.h>

#include "libst/format/output.hpp"
#include "st_test_util.hpp"

namespace {

using st_test::TempDir;

TEST(Output, FileAppearsOnlyOnCommit) {
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

TEST(Output, AbandonedFileLeavesNothing) {
  TempDir dir;
  {
    auto f = st::OutputFile::create(dir / "out.bin");
    ASSERT_TRUE(f);
    ASSERT_TRUE((*f)->write("x", 1));
  }
  EXPECT_TRUE(st_test::list_all(dir.path()).empty());
}

TEST(Output, DirRefusesExistingWithoutForceAndReplacesWithForce) {
  TempDir dir;
  const std::string out = dir / "model";
  st_test::make_dir(out);
  st_test::write_bytes(out + "/old.txt", "old");
  auto refused = st::OutputDir::create(out, false);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, st::Errc::exists);
  EXPECT_EQ(refused.error().file, out);
  auto d = st::OutputDir::create(out, true);
  ASSERT_TRUE(d);
  st_test::write_bytes((*d)->file("new.txt"), "new");
  EXPECT_TRUE(st_test::exists(out + "/old.txt"));  // untouched until commit
  ASSERT_TRUE((*d)->commit());
  EXPECT_EQ(st_test::list_all(out), std::vector<std::string>{"new.txt"});
  EXPECT_EQ(st_test::list_all(dir.path()), std::vector<std::string>{"model"});
}

TEST(Output, AbandonedDirLeavesNothing) {
  TempDir dir;
  {
    auto d = st::OutputDir::create(dir / "model", false);
    ASSERT_TRUE(d);
    st_test::write_bytes((*d)->file("a.txt"), "a");
  }
  EXPECT_TRUE(st_test::list_all(dir.path()).empty());
}

TEST(Output, CopyFileAndSameFile) {
  TempDir dir;
  st_test::write_bytes(dir / "a", "content");
  ASSERT_TRUE(st::copy_file(dir / "a", dir / "b"));
  EXPECT_EQ(st_test::read_bytes(dir / "b"), "content");
  EXPECT_TRUE(st::same_file(dir / "a", dir / "a"));
  EXPECT_TRUE(st::same_file(dir / "a", dir.path() + "/./a"));
  EXPECT_FALSE(st::same_file(dir / "a", dir / "b"));
  EXPECT_FALSE(st::same_file(dir / "a", dir / "missing"));
  auto bad = st::copy_file(dir / "missing", dir / "c");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().file, dir / "missing");
  EXPECT_FALSE(st_test::exists(dir / "c"));
}

}  // namespace
