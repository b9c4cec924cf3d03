// The realistic Segment events of the benchmarks: ingest_load sends them, profiles_bench folds
// them into profiles. Two in four are analytics.js product views, one a page with a campaign,
// one an analytics-node identify with an email; every one carries an anonymousId, and all but
// the page a userId, of one customer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>

namespace whisperer::bench {

// Where a customer's number goes (7 digits: customers below 10^7) and the placeholder messageId
// (36 characters, the length of the UUIDs the SDKs send): the callers write them in place.
constexpr char kCustomerMark[] = "#######";
constexpr char kMessageIdMark[] = "00000000-0000-4000-8000-000000000000";

// Writes `customer` (below 10^7) as the 7 digits at `at`, where a kCustomerMark was.
inline void WriteCustomer(char* at, uint64_t customer) {
  for (size_t d = sizeof(kCustomerMark) - 1; d-- > 0; customer /= 10) {
    at[d] = static_cast<char>('0' + customer % 10);
  }
}

// Event i of the rotating set, with kCustomerMark for its customer and kMessageIdMark for its
// messageId.
inline std::string EventShape(uint64_t i) {
  char buf[1024];
  const char* user = kCustomerMark;
  int sku = static_cast<int>(i * 104729 % 20'000);
  int n = 0;
  switch (i % 4) {
    case 0:
    case 1:
      n = std::snprintf(
          buf, sizeof(buf),
          R"({"type":"track","event":"Product Viewed","messageId":"00000000-0000-4000-8000-000000000000",)"
          R"("anonymousId":"anon-%s","userId":"user-%s","properties":{"product_id":"sku-%05d",)"
          R"("category":"Shoes","name":"Trail Runner %d","price":89.99,"currency":"USD",)"
          R"("position":%d},"context":{"library":{"name":"analytics.js","version":"5.2.0"},)"
          R"("page":{"path":"/p/sku-%05d","referrer":"https://www.google.com/"},)"
          R"("locale":"en-US"},"timestamp":"2024-06-01T12:00:00.123Z"})",
          user, user, sku, sku % 97, static_cast<int>(i % 24), sku);
      break;
    case 2:
      n = std::snprintf(
          buf, sizeof(buf),
          R"({"type":"page","name":"Product","messageId":"00000000-0000-4000-8000-000000000000",)"
          R"("anonymousId":"anon-%s","properties":{"path":"/p/sku-%05d","title":"Trail Runner",)"
          R"("url":"https://shop.example.com/p/sku-%05d","referrer":"https://www.google.com/"},)"
          R"("context":{"library":{"name":"analytics.js","version":"5.2.0"},"locale":"en-US",)"
          R"("campaign":{"source":"google","medium":"cpc"}},"timestamp":"2024-06-01T12:00:00.456Z"})",
          user, sku, sku);
      break;
    default:
      n = std::snprintf(
          buf, sizeof(buf),
          R"({"type":"identify","messageId":"00000000-0000-4000-8000-000000000000","userId":"user-%s",)"
          R"("anonymousId":"anon-%s","traits":{"email":"user%s@example.com","plan":"pro",)"
          R"("firstName":"Ada","lastName":"Lovelace","createdAt":"2023-11-05T09:30:00.000Z",)"
          R"("company":{"name":"Example Inc","employees":250}},"context":{"library":)"
          R"({"name":"analytics-node","version":"3.1.0"}},"timestamp":"2024-06-01T12:00:01.000Z"})",
          user, user, user);
      break;
  }
  return std::string(buf, static_cast<size_t>(n));
}

}  // namespace whisperer::bench
