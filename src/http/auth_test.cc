#include "http/auth.h"

#include <gtest/gtest.h>

#include "common/clock.h"
#include "http/rate_limiter.h"

namespace sluice::http {
namespace {

Request WithAuth(std::string value) {
  Request r;
  r.headers.emplace_back("authorization", std::move(value));
  return r;
}

TEST(KeyStore, AddAndFind) {
  KeyStore ks;
  EXPECT_TRUE(ks.empty());
  ASSERT_TRUE(ks.Add("web:secret-web-1", Role::kWrite).ok());
  ASSERT_TRUE(ks.Add("analyst:secret-read-1", Role::kRead).ok());
  EXPECT_TRUE(ks.HasRole(Role::kWrite));
  ASSERT_NE(ks.Find("secret-web-1"), nullptr);
  EXPECT_EQ(ks.Find("secret-web-1")->name, "web");
  EXPECT_EQ(ks.Find("secret-read-1")->role, Role::kRead);
  EXPECT_EQ(ks.Find("secret-web-2"), nullptr);
  EXPECT_EQ(ks.Find(""), nullptr);
  EXPECT_FALSE(ks.Add("nocolon", Role::kWrite).ok());
  EXPECT_FALSE(ks.Add(":secret-xx", Role::kWrite).ok());
  EXPECT_FALSE(ks.Add("short:abc", Role::kWrite).ok());
  auto dup = ks.Add("other:secret-web-1", Role::kWrite);
  ASSERT_FALSE(dup.ok());
  EXPECT_NE(dup.message().find("already used"), std::string::npos);
}

TEST(Credential, BasicBearerAndAbsent) {
  // base64("KEY123456:") as Segment's libraries send it.
  EXPECT_EQ(CredentialFromHeader(WithAuth("Basic S0VZMTIzNDU2Og==")), "KEY123456");
  // base64(":KEY123456"): key in the password.
  EXPECT_EQ(CredentialFromHeader(WithAuth("Basic OktFWTEyMzQ1Ng==")), "KEY123456");
  EXPECT_EQ(CredentialFromHeader(WithAuth("Bearer tok-abcdefgh")), "tok-abcdefgh");
  EXPECT_EQ(CredentialFromHeader(WithAuth("bearer  tok-abcdefgh")), "tok-abcdefgh");
  EXPECT_EQ(CredentialFromHeader(WithAuth("Basic !!!notbase64")), "");
  EXPECT_EQ(CredentialFromHeader(WithAuth("Digest foo")), "");
  EXPECT_FALSE(CredentialFromHeader(Request{}).has_value());
}

TEST(CheckReadAccess, ReadKeyOnlyOnceKeysExist) {
  EXPECT_FALSE(CheckReadAccess(nullptr, Request{}).has_value());
  KeyStore none;
  EXPECT_FALSE(CheckReadAccess(&none, Request{}).has_value());
  KeyStore ks;
  ASSERT_TRUE(ks.Add("web:secret-web-1", Role::kWrite).ok());
  ASSERT_TRUE(ks.Add("analyst:secret-read-1", Role::kRead).ok());
  EXPECT_FALSE(CheckReadAccess(&ks, WithAuth("Bearer secret-read-1")).has_value());
  auto missing = CheckReadAccess(&ks, Request{});
  ASSERT_TRUE(missing.has_value());
  EXPECT_EQ(missing->status, 401);
  EXPECT_NE(missing->body.find("missing read key"), std::string::npos) << missing->body;
  auto unknown = CheckReadAccess(&ks, WithAuth("Bearer secret-nope-1"));
  ASSERT_TRUE(unknown.has_value());
  EXPECT_EQ(unknown->status, 401);
  auto writer = CheckReadAccess(&ks, WithAuth("Bearer secret-web-1"));
  ASSERT_TRUE(writer.has_value());
  EXPECT_EQ(writer->status, 403);
}

TEST(Base64, EncodeRoundTrips) {
  EXPECT_EQ(Base64Encode("hello"), "aGVsbG8=");
  EXPECT_EQ(Base64Encode("KEY123456:"), "S0VZMTIzNDU2Og==");
  EXPECT_EQ(Base64Encode(""), "");
  const std::vector<std::string> inputs = {"a", "ab", "abc", "abcd", std::string("\0\xff\x10", 3)};
  for (const std::string& s : inputs) {
    EXPECT_EQ(Base64Decode(Base64Encode(s)), s);
  }
}

TEST(Base64, Decode) {
  EXPECT_EQ(Base64Decode("aGVsbG8="), "hello");
  EXPECT_EQ(Base64Decode("aGVsbG8"), "hello");
  EXPECT_EQ(Base64Decode(""), "");
  EXPECT_FALSE(Base64Decode("a").has_value());
  EXPECT_FALSE(Base64Decode("a$==").has_value());
}

TEST(RateLimiter, BucketRefillsAtRate) {
  ManualClock clock;
  RateLimiter rl(100, 200, &clock);  // 100 events/s, burst 200
  double retry = 0;
  EXPECT_TRUE(rl.TryTake("k", 150, &retry));
  EXPECT_TRUE(rl.TryTake("k", 50, &retry));
  EXPECT_FALSE(rl.TryTake("k", 10, &retry));
  EXPECT_NEAR(retry, 0.1, 1e-9);  // 10 tokens at 100/s
  EXPECT_TRUE(rl.TryTake("other", 200, &retry));  // buckets are per key
  clock.Advance(100'000);  // 0.1 s → 10 tokens
  EXPECT_TRUE(rl.TryTake("k", 10, &retry));
  EXPECT_FALSE(rl.TryTake("k", 1, &retry));
  clock.Advance(10'000'000);
  EXPECT_TRUE(rl.TryTake("k", 1000, &retry));  // over burst: allowed when full
  EXPECT_FALSE(rl.TryTake("k", 1, &retry));
  EXPECT_NEAR(retry, 8.01, 1e-6);  // 200 - 1000 = -800 tokens, need 1
  RateLimiter off(0, 0, &clock);
  EXPECT_TRUE(off.TryTake("k", 1e9, &retry));
}

}  // namespace
}  // namespace sluice::http
