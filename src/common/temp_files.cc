#include "common/temp_files.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <system_error>

#include "common/status.h"
#include "common/strings.h"

namespace whisperer {

std::filesystem::path TempDirectory() {
  std::error_code ec;
  std::filesystem::path dir = std::filesystem::temp_directory_path(ec);
  if (ec || dir.empty() || !std::filesystem::is_directory(dir, ec)) return "/tmp";
  return dir;
}

absl::StatusOr<std::string> MakeTempDirectory(std::string_view prefix) {
  const std::filesystem::path dir = TempDirectory();
  std::string path = (dir / StrCat(prefix, "-XXXXXX")).string();
  if (::mkdtemp(path.data()) == nullptr) {
    return MakeError(
        absl::StatusCode::kInternal, "cannot_write",
        StrCat("cannot create a scratch directory in ", dir.string(), ": ", std::strerror(errno)));
  }
  return path;
}

}  // namespace whisperer
