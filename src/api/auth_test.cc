#include "api/auth.h"

#include <gtest/gtest.h>

#include "common/strings.h"

#include "common/status.h"

namespace whisperer::api {
namespace {

KeyRing Keys() {
  KeyRing keys;
  EXPECT_TRUE(keys.Add("wk", {1, "default", Role::kWrite}).ok());
  EXPECT_TRUE(keys.Add("ak", {1, "default", Role::kAdmin}).ok());
  return keys;
}

std::string Basic(std::string_view userpass) { return "Basic " + Base64Encode(userpass); }

TEST(AuthTest, CollectWithBasicOrBodyKey) {
  KeyRing keys = Keys();
  EXPECT_EQ(AuthenticateCollect(keys, Basic("wk:"), "")->workspace, "default");
  EXPECT_EQ(AuthenticateCollect(keys, Basic("wk"), "")->role, Role::kWrite);
  EXPECT_EQ(AuthenticateCollect(keys, "", "wk")->workspace_id, 1u);
  EXPECT_EQ(AuthenticateCollect(keys, Basic("ak:"), "")->role, Role::kAdmin);
  EXPECT_EQ(AuthenticateCollect(keys, "Bearer wk", "")->role, Role::kWrite);
  // A header of another scheme does not hide the body's key.
  EXPECT_TRUE(AuthenticateCollect(keys, "Digest xyz", "wk").ok());
  EXPECT_TRUE(HasHeaderKey(" basic abc"));
  EXPECT_FALSE(HasHeaderKey("Digest abc"));
  // Basic without a user name ("Og==" is ":") carries no key either: the body's counts.
  EXPECT_FALSE(HasHeaderKey(Basic(":")));
  EXPECT_FALSE(HasHeaderKey("Basic "));
  EXPECT_TRUE(AuthenticateCollect(keys, Basic(":"), "wk").ok());
  EXPECT_TRUE(HasHeaderKey("Basic %%%"));  // malformed: its error is the answer
}

TEST(AuthTest, CollectFailures) {
  KeyRing keys = Keys();
  EXPECT_EQ(AuthenticateCollect(keys, "", "").status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(AuthenticateCollect(keys, Basic("nope:"), "wk").status().code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(AuthenticateCollect(keys, "Basic %%%", "").status().code(),
            absl::StatusCode::kUnauthenticated);
}

TEST(AuthTest, AdminNeedsAdminKey) {
  KeyRing keys = Keys();
  EXPECT_TRUE(AuthenticateAdmin(keys, "Bearer ak").ok());
  EXPECT_TRUE(AuthenticateAdmin(keys, "bearer  ak ").ok());
  EXPECT_EQ(AuthenticateAdmin(keys, "Bearer wk").status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(ErrorCodeOf(AuthenticateAdmin(keys, "Bearer wk").status()), "forbidden");
  EXPECT_EQ(AuthenticateAdmin(keys, "Bearer x").status().code(),
            absl::StatusCode::kUnauthenticated);
  // HTTP Basic, as curl -u and the Segment clients send keys: the same answers.
  EXPECT_EQ(AuthenticateAdmin(keys, Basic("ak:"))->role, Role::kAdmin);
  EXPECT_EQ(ErrorCodeOf(AuthenticateAdmin(keys, Basic("wk:")).status()), "forbidden");
  EXPECT_EQ(ErrorCodeOf(AuthenticateAdmin(keys, Basic("x:")).status()), "unauthenticated");
  EXPECT_EQ(ErrorCodeOf(AuthenticateAdmin(keys, "Basic !!!").status()), "unauthenticated");
  EXPECT_EQ(ErrorCodeOf(AuthenticateAdmin(keys, "Digest ak").status()), "unauthenticated");
}

TEST(AuthTest, DuplicateKeyRefused) {
  KeyRing keys = Keys();
  EXPECT_EQ(keys.Add("wk", {2, "other", Role::kWrite}).code(), absl::StatusCode::kAlreadyExists);
}

}  // namespace
}  // namespace whisperer::api
