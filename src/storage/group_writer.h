// GroupWriter: writes for threads that must not wait for one another (the HTTP threads writing
// the decision log, server/decide_service.h).
//
// Write(batch, done) writes `batch` and then calls `done` with the result. When no other thread
// is writing through the same GroupWriter, the caller writes at once and `done` runs on it
// before Write returns. When another thread is, the batch is queued and Write returns at once:
// the writing thread takes everything queued when its write is over, writes it as one RocksDB
// write (one append to the write-ahead log), calls those `done`s, and goes on until the queue is
// empty. No caller ever waits for another's write, and `done` always runs after the write it
// reports on.
//
// Why not only RocksDB's own write group: there the threads that are not the group's leader
// wait until the leader has written them, spinning and yielding first, then on a futex. With
// the 2 HTTP threads of a 2-core machine, waiting that way took 7% of their time in /v1/decide,
// and the wake-ups that ended the waits most of the rest of the cost of the write path; the
// thread that hands its batch over here instead goes back to its other connections
// (bench/, November 2026).
//
// A failed write fails every batch of it: they go to RocksDB as one WriteBatch, and a batch
// that cannot be added to the group (one naming a column family the store does not have) fails
// the group before anything is written.
//
// Thread-safety: Write from any thread. `done` must not call Write on the same GroupWriter
// (it would queue behind itself; it does not deadlock, but the answer would wait for the
// queue to drain) and should be quick: other callers' answers wait for it.
#pragma once

#include <cstddef>
#include <functional>
#include <mutex>
#include <vector>

#include "absl/status/status.h"
#include "rocksdb/write_batch.h"
#include "storage/store.h"

namespace whisperer::storage {

class GroupWriter {
 public:
  using Done = std::function<void(absl::Status)>;

  explicit GroupWriter(Store* store) : store_(store) {}

  void Write(rocksdb::WriteBatch batch, Done done);

  // Batches written (or failed) so far, and the RocksDB writes they took.
  size_t batches() const;
  size_t groups() const;

 private:
  struct Queued {
    rocksdb::WriteBatch batch;
    Done done;
  };

  Store* store_;
  mutable std::mutex mu_;
  bool writing_ = false;        // a thread is in Write's loop
  std::vector<Queued> queued_;  // batches for that thread to write next
  size_t batches_ = 0;
  size_t groups_ = 0;
};

}  // namespace whisperer::storage
