#include "common/status.h"

#include <gtest/gtest.h>

namespace whisperer {
namespace {

TEST(StatusTest, CarriesCodeAndField) {
  absl::Status s = InvalidInput("missing_field", "userId or anonymousId is required", "userId");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ErrorCodeOf(s), "missing_field");
  EXPECT_EQ(ErrorFieldOf(s), "userId");
  EXPECT_EQ(s.message(), "userId or anonymousId is required");
}

TEST(StatusTest, DefaultCodeFromCanonical) {
  EXPECT_EQ(ErrorCodeOf(absl::UnavailableError("x")), "unavailable");
  EXPECT_EQ(ErrorFieldOf(absl::UnavailableError("x")), "");
}

TEST(StatusTest, FieldPrefix) {
  absl::Status s = InvalidInput("wrong_type", "m", "userId");
  EXPECT_EQ(ErrorFieldOf(WithFieldPrefix(s, "batch[3]")), "batch[3].userId");
  EXPECT_EQ(ErrorCodeOf(WithFieldPrefix(s, "batch[3]")), "wrong_type");
  EXPECT_EQ(ErrorFieldOf(WithFieldPrefix(InvalidInput("c", "m"), "batch[3]")), "batch[3]");
  EXPECT_EQ(ErrorFieldOf(WithFieldPrefix(InvalidInput("c", "m", "[2]"), "batch")), "batch[2]");
  EXPECT_TRUE(WithFieldPrefix(absl::OkStatus(), "x").ok());
}

}  // namespace
}  // namespace whisperer
