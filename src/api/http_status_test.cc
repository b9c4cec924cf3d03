#include "api/http_status.h"

#include <gtest/gtest.h>

#include "common/status.h"

namespace whisperer::api {
namespace {

TEST(HttpStatusTest, Table) {
  EXPECT_EQ(HttpStatusFor(absl::StatusCode::kInvalidArgument), 400);
  EXPECT_EQ(HttpStatusFor(absl::StatusCode::kUnauthenticated), 401);
  EXPECT_EQ(HttpStatusFor(absl::StatusCode::kPermissionDenied), 403);
  EXPECT_EQ(HttpStatusFor(absl::StatusCode::kNotFound), 404);
  EXPECT_EQ(HttpStatusFor(absl::StatusCode::kUnimplemented), 405);
  EXPECT_EQ(HttpStatusFor(absl::StatusCode::kAborted), 409);
  EXPECT_EQ(HttpStatusFor(absl::StatusCode::kOutOfRange), 413);
  EXPECT_EQ(HttpStatusFor(absl::StatusCode::kResourceExhausted), 429);
  EXPECT_EQ(HttpStatusFor(absl::StatusCode::kUnavailable), 503);
  EXPECT_EQ(HttpStatusFor(absl::StatusCode::kInternal), 500);
}

TEST(HttpStatusTest, ErrorBody) {
  EXPECT_EQ(
      ErrorBody(InvalidInput("missing_field", "userId \"x\" needed", "userId")),
      R"({"error":{"code":"missing_field","message":"userId \"x\" needed","field":"userId"}})");
  EXPECT_EQ(ErrorBody(absl::UnavailableError("busy")),
            R"({"error":{"code":"unavailable","message":"busy"}})");
}

}  // namespace
}  // namespace whisperer::api
