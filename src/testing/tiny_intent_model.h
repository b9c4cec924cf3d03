// TinyIntentModel: a two-intent fastText model (track_order, refund) trained on phrasings
// written for the tests, with small options so that it trains in milliseconds. Test-only.
#pragma once

#include <memory>
#include <vector>

#include <gtest/gtest.h>

#include "text/intent_model.h"

namespace whisperer::testing {

inline std::unique_ptr<text::IntentModel> TinyIntentModel() {
  std::vector<text::IntentExample> examples;
  for (const char* t : {"where is my order", "has my package shipped", "track my parcel",
                        "when will my order arrive", "my delivery is late", "order status"}) {
    examples.push_back({t, "track_order"});
  }
  for (const char* t :
       {"I want a refund", "give me my money back", "refund my payment",
        "I was charged twice, refund me", "money back please", "request a refund"}) {
    examples.push_back({t, "refund"});
  }
  text::IntentOptions o;
  o.dim = 16;
  o.bucket = 2000;
  auto model = text::IntentModel::Train(examples, o);
  EXPECT_TRUE(model.ok()) << model.status();
  return model.ok() ? std::move(*model) : nullptr;
}

}  // namespace whisperer::testing
