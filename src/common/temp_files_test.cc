#include "common/temp_files.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <optional>

namespace whisperer {
namespace {

// Sets TMPDIR for the test's scope, restoring it after.
class TmpdirScope {
 public:
  explicit TmpdirScope(const char* value) {
    if (const char* old = std::getenv("TMPDIR")) old_ = old;
    if (value == nullptr) {
      ::unsetenv("TMPDIR");
    } else {
      ::setenv("TMPDIR", value, 1);
    }
  }
  ~TmpdirScope() {
    if (old_) {
      ::setenv("TMPDIR", old_->c_str(), 1);
    } else {
      ::unsetenv("TMPDIR");
    }
  }

 private:
  std::optional<std::string> old_;
};

TEST(TempFiles, ABadTmpdirFallsBackToTmp) {
  const std::string file = "/tmp/whisperer-temp-files-test-file";
  std::ofstream(file) << "x";
  for (const char* bad : {"", "/nonexistent-whisperer-dir", file.c_str()}) {
    TmpdirScope scope(bad);
    EXPECT_EQ(TempDirectory(), "/tmp") << bad;
    absl::StatusOr<std::string> dir = MakeTempDirectory("whisperer-test");
    ASSERT_TRUE(dir.ok()) << dir.status();
    EXPECT_EQ(dir->rfind("/tmp/whisperer-test-", 0), 0u) << *dir;
    EXPECT_TRUE(std::filesystem::is_directory(*dir));
    std::filesystem::remove(*dir);
  }
  std::filesystem::remove(file);
}

TEST(TempFiles, AGoodTmpdirIsUsed) {
  const std::filesystem::path own = std::filesystem::path("/tmp") / "whisperer-temp-files-own";
  std::filesystem::create_directories(own);
  TmpdirScope scope(own.c_str());
  EXPECT_EQ(TempDirectory(), own);
  absl::StatusOr<std::string> a = MakeTempDirectory("x");
  absl::StatusOr<std::string> b = MakeTempDirectory("x");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(*a, *b);
  EXPECT_EQ(std::filesystem::path(*a).parent_path(), own);
  std::filesystem::remove_all(own);
}

}  // namespace
}  // namespace whisperer
