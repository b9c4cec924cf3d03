#include "storage/group_writer.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace whisperer::storage {
namespace {

// Copies the operations of one batch into another (RocksDB has no public append of batches).
class Appender : public rocksdb::WriteBatch::Handler {
 public:
  Appender(const std::vector<rocksdb::ColumnFamilyHandle*>& families, rocksdb::WriteBatch* to)
      : families_(families), to_(to) {}

  rocksdb::Status PutCF(uint32_t cf, const rocksdb::Slice& key,
                        const rocksdb::Slice& value) override {
    rocksdb::ColumnFamilyHandle* h = Family(cf);
    return h ? to_->Put(h, key, value) : Unknown(cf);
  }
  rocksdb::Status DeleteCF(uint32_t cf, const rocksdb::Slice& key) override {
    rocksdb::ColumnFamilyHandle* h = Family(cf);
    return h ? to_->Delete(h, key) : Unknown(cf);
  }
  rocksdb::Status SingleDeleteCF(uint32_t cf, const rocksdb::Slice& key) override {
    rocksdb::ColumnFamilyHandle* h = Family(cf);
    return h ? to_->SingleDelete(h, key) : Unknown(cf);
  }
  rocksdb::Status DeleteRangeCF(uint32_t cf, const rocksdb::Slice& begin,
                                const rocksdb::Slice& end) override {
    rocksdb::ColumnFamilyHandle* h = Family(cf);
    return h ? to_->DeleteRange(h, begin, end) : Unknown(cf);
  }
  rocksdb::Status MergeCF(uint32_t cf, const rocksdb::Slice& key,
                          const rocksdb::Slice& value) override {
    rocksdb::ColumnFamilyHandle* h = Family(cf);
    return h ? to_->Merge(h, key, value) : Unknown(cf);
  }

 private:
  rocksdb::ColumnFamilyHandle* Family(uint32_t id) const {
    for (rocksdb::ColumnFamilyHandle* h : families_) {
      if (h->GetID() == id) return h;
    }
    return nullptr;
  }
  static rocksdb::Status Unknown(uint32_t id) {
    return rocksdb::Status::InvalidArgument(absl::StrCat("unknown column family ", id));
  }

  const std::vector<rocksdb::ColumnFamilyHandle*>& families_;
  rocksdb::WriteBatch* to_;
};

}  // namespace

void GroupWriter::Write(rocksdb::WriteBatch batch, Done done) {
  {
    std::lock_guard lock(mu_);
    if (writing_) {
      queued_.push_back({std::move(batch), std::move(done)});
      return;
    }
    writing_ = true;
  }
  std::vector<Queued> group;
  group.push_back({std::move(batch), std::move(done)});
  while (!group.empty()) {
    absl::Status status;
    rocksdb::WriteBatch* write = &group.front().batch;
    rocksdb::WriteBatch merged;
    if (group.size() > 1) {
      Appender append(store_->column_families(), &merged);
      for (Queued& q : group) {
        if (rocksdb::Status s = q.batch.Iterate(&append); !s.ok()) {
          status = Store::FromRocks(s, "grouping writes");
          break;
        }
      }
      write = &merged;
    }
    if (status.ok()) status = store_->Write(write);
    for (Queued& q : group) q.done(status);
    std::lock_guard lock(mu_);
    batches_ += group.size();
    ++groups_;
    group.clear();
    group.swap(queued_);
    if (group.empty()) writing_ = false;
  }
}

size_t GroupWriter::batches() const {
  std::lock_guard lock(mu_);
  return batches_;
}

size_t GroupWriter::groups() const {
  std::lock_guard lock(mu_);
  return groups_;
}

}  // namespace whisperer::storage
