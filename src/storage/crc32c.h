// CRC32C for RocksDB with the SSE4.2 instruction.
//
// RocksDB checksums every write-ahead-log record and every table block with CRC32C
// (rocksdb::crc32c::Extend). Debian builds librocksdb portable, without SSE4.2, so its CRC32C
// is a table-driven loop: measured at about 15% of the shard thread's time in plain ingest
// (roughly 1 byte per cycle over every byte written). crc32c.cc defines that same exported
// function in the binary, which the dynamic linker then binds the library's own calls to (they
// go through its PLT), computed with the CPU's crc32 instruction, several bytes per cycle. On a
// CPU without SSE4.2 it hands the call to the library's own function. The results are the
// same CRC32C either way, so files written by either read with the other.
#pragma once

#include <cstddef>
#include <cstdint>

// librocksdb's util/crc32c.h function that every WAL record and table block checksum goes
// through: CRC32C (Castagnoli) of data[0, n) continuing from init_crc. crc32c.cc defines it.
namespace rocksdb::crc32c {
uint32_t Extend(uint32_t init_crc, const char* data, size_t n);
}

namespace whisperer::storage {

// Its mangled name, under which the library exports it (for dlsym).
inline constexpr char kRocksDbExtendSymbol[] = "_ZN7rocksdb6crc32c6ExtendEjPKcm";

// Whether RocksDB's CRC32C calls run on the crc32 instruction: false on other CPUs, or when
// the process's `rocksdb::crc32c::Extend` is not ours. (A library built to call its own copy
// directly, not through its PLT, would not be detected here; the benchmarks would show it.)
// Store::Open calls it, which is also what links crc32c.cc into every binary that opens a
// store: the linker leaves out an archive member nothing refers to.
bool Crc32cAccelerated();

}  // namespace whisperer::storage
