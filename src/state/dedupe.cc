#include "state/dedupe.h"

#include <string>
#include <unordered_set>

#include "common/strings.h"
#include "storage/keys.h"

namespace whisperer::state {

absl::Status DedupeIndex::FindDuplicates(std::span<const MessageRef> refs,
                                         std::vector<bool>* duplicate) const {
  duplicate->assign(refs.size(), false);
  if (refs.empty()) return absl::OkStatus();
  std::vector<std::string> keys;
  keys.reserve(refs.size());
  std::vector<rocksdb::Slice> slices;
  slices.reserve(refs.size());
  for (const MessageRef& ref : refs) {
    keys.push_back(storage::DedupeKey(ref.workspace_id, ref.message_id));
    slices.emplace_back(keys.back());
  }
  std::vector<rocksdb::PinnableSlice> values(refs.size());
  std::vector<rocksdb::Status> statuses(refs.size());
  store_->db()->MultiGet(rocksdb::ReadOptions(), store_->dedupe(), slices.size(), slices.data(),
                         values.data(), statuses.data());
  const int64_t now = clock_->NowMillis();
  std::unordered_set<std::string_view> seen;
  seen.reserve(refs.size());
  for (size_t i = 0; i < refs.size(); ++i) {
    if (!seen.insert(keys[i]).second) {
      (*duplicate)[i] = true;
      continue;
    }
    if (statuses[i].IsNotFound()) continue;
    if (!statuses[i].ok()) {
      return absl::UnavailableError(StrCat("reading the dedupe index: ", statuses[i].ToString()));
    }
    auto entry = storage::DecodeDedupeEntry(values[i].ToStringView());
    (*duplicate)[i] = entry && now - entry->received_at_ms <= store_->dedupe_window_ms();
  }
  return absl::OkStatus();
}

absl::Status DedupeIndex::Record(const MessageRef& ref, uint64_t sequence, int64_t received_at_ms,
                                 rocksdb::WriteBatch* batch) const {
  rocksdb::Status s =
      batch->Put(store_->dedupe(), storage::DedupeKey(ref.workspace_id, ref.message_id),
                 storage::EncodeDedupeEntry({sequence, received_at_ms}));
  if (!s.ok()) return absl::InternalError(s.ToString());
  return absl::OkStatus();
}

}  // namespace whisperer::state
