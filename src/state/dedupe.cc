#include "state/dedupe.h"

#include <algorithm>
#include <string>
#include <unordered_map>

#include "common/strings.h"
#include "storage/keys.h"

namespace whisperer::state {

absl::Status DedupeIndex::FindDuplicates(std::span<const MessageRef> refs,
                                         std::vector<bool>* duplicate, Keys* keys_out) const {
  duplicate->assign(refs.size(), false);
  const Keys& keys = *keys_out;
  keys_out->bytes_.clear();
  if (refs.empty()) return absl::OkStatus();
  keys_out->bytes_.reserve(refs.size() * storage::kDedupeKeyBytes);
  for (const MessageRef& ref : refs) {
    storage::AppendDedupeKey(&keys_out->bytes_, ref.workspace_id, ref.message_id);
  }
  std::vector<rocksdb::Slice> slices;
  slices.reserve(refs.size());
  for (size_t i = 0; i < refs.size(); ++i) slices.emplace_back(keys[i].data(), keys[i].size());
  std::vector<rocksdb::PinnableSlice> values(refs.size());
  std::vector<rocksdb::Status> statuses(refs.size());
  store_->db()->MultiGet(rocksdb::ReadOptions(), store_->dedupe(), slices.size(), slices.data(),
                         values.data(), statuses.data());
  const int64_t now = clock_->NowMillis();
  // Earlier refs of this group by key; a key hit counts only when the messageId matches too.
  std::unordered_map<std::string_view, size_t> seen;
  seen.reserve(refs.size());
  for (size_t i = 0; i < refs.size(); ++i) {
    auto [it, inserted] = seen.emplace(keys[i], i);
    if (!inserted && refs[it->second].message_id == refs[i].message_id) {
      (*duplicate)[i] = true;
      continue;
    }
    if (statuses[i].IsNotFound()) continue;
    if (!statuses[i].ok()) {
      return absl::UnavailableError(StrCat("reading the dedupe index: ", statuses[i].ToString()));
    }
    auto entry = storage::DecodeDedupeEntry(values[i].ToStringView());
    (*duplicate)[i] = entry && entry->message_id == refs[i].message_id &&
                      now - entry->received_at_ms <= store_->dedupe_window_ms();
  }
  return absl::OkStatus();
}

absl::Status DedupeIndex::Record(std::vector<NewEntry>& entries, rocksdb::WriteBatch* batch) const {
  std::sort(entries.begin(), entries.end(),
            [](const NewEntry& a, const NewEntry& b) { return a.key < b.key; });
  for (const NewEntry& e : entries) {
    rocksdb::Status s =
        batch->Put(store_->dedupe(), rocksdb::Slice(e.key.data(), e.key.size()),
                   storage::EncodeDedupeEntry({e.sequence, e.received_at_ms, e.ref->message_id}));
    if (!s.ok()) return absl::InternalError(s.ToString());
  }
  return absl::OkStatus();
}

}  // namespace whisperer::state
