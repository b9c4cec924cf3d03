#include "storage/keys.h"

#include "common/hash.h"

namespace whisperer::storage {

void PutBigEndian32(std::string* out, uint32_t v) {
  char buf[4] = {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
                 static_cast<char>(v)};
  out->append(buf, 4);
}

void PutBigEndian64(std::string* out, uint64_t v) {
  PutBigEndian32(out, static_cast<uint32_t>(v >> 32));
  PutBigEndian32(out, static_cast<uint32_t>(v));
}

std::string EventKey(uint32_t workspace_id, uint64_t sequence) {
  std::string key;
  key.reserve(12);
  PutBigEndian32(&key, workspace_id);
  PutBigEndian64(&key, sequence);
  return key;
}

std::string WorkspacePrefix(uint32_t workspace_id) {
  std::string key;
  PutBigEndian32(&key, workspace_id);
  return key;
}

std::optional<EventKeyParts> DecodeEventKey(std::string_view key) {
  if (key.size() != 12) return std::nullopt;
  return EventKeyParts{GetBigEndian32(key.data()), GetBigEndian64(key.data() + 4)};
}

namespace {

void AppendHash128(std::string* out, std::string_view data) {
  Hash128 h = Fingerprint128(data);
  PutBigEndian64(out, h.a);
  PutBigEndian64(out, h.b);
}

}  // namespace

void AppendDedupeKey(std::string* out, uint32_t workspace_id, std::string_view message_id) {
  PutBigEndian32(out, workspace_id);
  AppendHash128(out, message_id);
}

std::string DedupeKey(uint32_t workspace_id, std::string_view message_id) {
  std::string key;
  key.reserve(kDedupeKeyBytes);
  AppendDedupeKey(&key, workspace_id, message_id);
  return key;
}

namespace {

// The identity key's layout, [workspace u32][type length u8][type][value], handed to `put` in
// three pieces: IdentityKey appends them, IdentityFingerprint hashes them, so both follow the
// one layout.
template <typename Put>
void IdentityKeyPieces(uint32_t workspace_id, std::string_view type, std::string_view value,
                       Put put) {
  std::string head;  // 5 bytes: within the string's own buffer, no allocation
  PutBigEndian32(&head, workspace_id);
  head.push_back(static_cast<char>(static_cast<uint8_t>(type.size())));
  put(std::string_view(head));
  put(type);
  put(value);
}

}  // namespace

std::string IdentityKey(uint32_t workspace_id, std::string_view type, std::string_view value) {
  std::string key;
  key.reserve(5 + type.size() + value.size());
  IdentityKeyPieces(workspace_id, type, value,
                    [&key](std::string_view piece) { key.append(piece); });
  return key;
}

Hash128 IdentityFingerprint(uint32_t workspace_id, std::string_view type, std::string_view value) {
  Fingerprinter f;
  IdentityKeyPieces(workspace_id, type, value, [&f](std::string_view piece) { f.Add(piece); });
  return f.Finish();
}

std::string ProfileKey(uint32_t workspace_id, uint64_t profile) {
  return EventKey(workspace_id, profile);  // the same [u32][u64] layout
}

std::string TriggerCountKey(uint32_t workspace_id, uint64_t customer) {
  std::string key = ProfileKey(workspace_id, customer);
  key.append("triggers");
  return key;
}

std::string TimelineKey(uint32_t workspace_id, uint64_t profile, uint64_t sequence) {
  std::string key;
  key.reserve(kTimelineKeyBytes);
  PutBigEndian32(&key, workspace_id);
  PutBigEndian64(&key, profile);
  PutBigEndian64(&key, sequence);
  return key;
}

std::string SuppressionKey(uint32_t workspace_id, std::string_view type, std::string_view value) {
  std::string key(kSuppressionPrefix);
  PutBigEndian32(&key, workspace_id);
  key.push_back(static_cast<char>(static_cast<uint8_t>(type.size())));
  key.append(type);
  AppendHash128(&key, value);
  return key;
}

std::string MergedIntoValue(uint64_t survivor) {
  std::string value = "M";
  PutBigEndian64(&value, survivor);
  return value;
}

std::optional<uint64_t> DecodeMergedInto(std::string_view value) {
  if (value.size() != 9 || value[0] != 'M') return std::nullopt;
  return GetBigEndian64(value.data() + 1);
}

void AppendDedupeEntry(std::string* out, int64_t received_at_ms) {
  PutBigEndian64(out, static_cast<uint64_t>(received_at_ms));
}

std::string EncodeDedupeEntry(int64_t received_at_ms) {
  std::string value;
  AppendDedupeEntry(&value, received_at_ms);
  return value;
}

std::optional<DedupeEntry> DecodeDedupeEntry(std::string_view value) {
  if (value.size() == kDedupeEntryBytes) {
    return DedupeEntry{static_cast<int64_t>(GetBigEndian64(value.data())), {}};
  }
  // The old format: [sequence u64][receivedAt i64][messageId], the messageId never empty.
  if (value.size() <= 16) return std::nullopt;
  return DedupeEntry{static_cast<int64_t>(GetBigEndian64(value.data() + 8)), value.substr(16)};
}

std::string DecisionKey(uint32_t workspace_id, uint64_t decision) {
  std::string key = WorkspacePrefix(workspace_id);
  key.push_back('D');
  PutBigEndian64(&key, decision);
  return key;
}

std::string ProfileDecisionPrefix(uint32_t workspace_id, uint64_t profile) {
  std::string key = WorkspacePrefix(workspace_id);
  key.push_back('P');
  PutBigEndian64(&key, profile);
  return key;
}

std::string ProfileDecisionKey(uint32_t workspace_id, uint64_t profile, uint64_t decision) {
  std::string key = ProfileDecisionPrefix(workspace_id, profile);
  PutBigEndian64(&key, decision);
  return key;
}

std::string RewardPrefix(uint32_t workspace_id, uint64_t decision) {
  std::string key = WorkspacePrefix(workspace_id);
  key.push_back('R');
  PutBigEndian64(&key, decision);
  return key;
}

std::string RewardPrefix(uint32_t workspace_id, uint64_t decision, uint8_t slot) {
  std::string key = RewardPrefix(workspace_id, decision);
  key.push_back(static_cast<char>(slot));
  return key;
}

std::string BanditKey(uint32_t workspace_id, std::string_view point) {
  std::string key = WorkspacePrefix(workspace_id);
  key.push_back('B');
  key.append(point);
  return key;
}

uint64_t DecisionOfKey(std::string_view key) {
  return GetBigEndian64(key.data() + key.size() - sizeof(uint64_t));
}

std::string ApprovalKey(uint32_t workspace_id, uint64_t decision) {
  std::string key = WorkspacePrefix(workspace_id);
  key.push_back('A');
  PutBigEndian64(&key, decision);
  return key;
}

namespace {

std::string DecisionKeyPrefix(uint32_t workspace_id, char tag) {
  std::string key = WorkspacePrefix(workspace_id);
  key.push_back(tag);
  return key;
}

std::string DueKey(uint32_t workspace_id, char tag, int64_t at_ms, uint64_t decision) {
  std::string key = DecisionKeyPrefix(workspace_id, tag);
  PutBigEndian64(&key, static_cast<uint64_t>(at_ms));
  PutBigEndian64(&key, decision);
  return key;
}

}  // namespace

std::string ApprovalDuePrefix(uint32_t workspace_id) {
  return DecisionKeyPrefix(workspace_id, 'Q');
}

std::string ApprovalDueKey(uint32_t workspace_id, int64_t expires_ms, uint64_t decision) {
  return DueKey(workspace_id, 'Q', expires_ms, decision);
}

std::string ActivationKey(uint32_t workspace_id, uint64_t decision) {
  std::string key = DecisionKeyPrefix(workspace_id, 'V');
  PutBigEndian64(&key, decision);
  return key;
}

std::string EngagementKey(uint32_t workspace_id, uint64_t customer_hash) {
  std::string key = DecisionKeyPrefix(workspace_id, 'E');
  PutBigEndian64(&key, customer_hash);
  return key;
}

std::string WorkspaceEngagementKey(uint32_t workspace_id) {
  return DecisionKeyPrefix(workspace_id, 'G');
}

std::string VariantStatsKey(uint32_t workspace_id) { return DecisionKeyPrefix(workspace_id, 'H'); }

std::string ActionEditPrefix(uint32_t workspace_id) { return DecisionKeyPrefix(workspace_id, 'K'); }

std::string ActionEditKey(uint32_t workspace_id, std::string_view action) {
  std::string key = ActionEditPrefix(workspace_id);
  key.append(action);
  return key;
}

std::string GoalPendingPrefix(uint32_t workspace_id) {
  return DecisionKeyPrefix(workspace_id, 'O');
}

std::string GoalPendingKey(uint32_t workspace_id, uint64_t sequence) {
  std::string key = GoalPendingPrefix(workspace_id);
  PutBigEndian64(&key, sequence);
  return key;
}

std::string RewardDuePrefix(uint32_t workspace_id) { return DecisionKeyPrefix(workspace_id, 'W'); }

std::string RewardDueKey(uint32_t workspace_id, int64_t due_ms, uint64_t decision) {
  return DueKey(workspace_id, 'W', due_ms, decision);
}

std::string ContactKey(uint32_t workspace_id, uint64_t customer_hash) {
  std::string key = WorkspacePrefix(workspace_id);
  key.push_back('C');
  PutBigEndian64(&key, customer_hash);
  return key;
}

std::string ControlBucketKey(uint32_t workspace_id, uint64_t customer_hash) {
  std::string key = WorkspacePrefix(workspace_id);
  key.push_back('X');
  PutBigEndian64(&key, customer_hash);
  return key;
}

std::string BudgetKey(uint32_t workspace_id, std::string_view action) {
  std::string key = WorkspacePrefix(workspace_id);
  key.push_back('U');
  key.append(action);
  return key;
}

}  // namespace whisperer::storage
