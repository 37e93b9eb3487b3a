#pragma once
// SuspectRows: commit: batch (insert) guesses, from the table's definition, which rows the
// server will refuse, before they are sent. Pure logic over COPY text lines, tested alone
// (tests/suspect_rows_test.cpp); postgres/table_catalog.hpp reads the definition from the catalog.
//
// Why: a bad row inside a COPY costs the rows before it in its piece (loaded, undone, loaded
// again) and an exchange with the server to learn of it. A row suspected in advance is kept out
// of the batch's COPY and inserted afterwards with the batch's other suspects in one statement
// that tries each alone on the server (pg_temp.etl_insert_each, BatchSteps::load_each): the
// COPY then meets no bad row, and the bad rows cost no exchange of their own.
//
// A guess never decides an outcome: the server does, for every row, suspected or not. A wrong
// guess costs time only: a good row suspected is inserted alone (some 10 µs on the server), a bad
// row not suspected is found by the COPY as before. So every check here errs towards
// suspicion, and a row is suspected when a mapped value
//   - is NULL in a NOT NULL column;
//   - does not look like its column's type in the plainest spelling (integers and decimals in
//     digits, dates as YYYY-MM-DD that exist, booleans as t/f/true/false), or is longer than
//     its varchar(n)/char(n), or has more integer digits than its numeric(p, s) holds;
//   - fails a CHECK of the form `column <op> number` (other CHECKs are not guessed);
//   - repeats the key of a unique index (all columns mapped, no expression, no predicate) seen
//     earlier in the run: remembered in Bloom filters, two generations of kFilterBits bits,
//     so memory stays flat (4 MiB) whatever the length of the run and a key is remembered for
//     at least kGenerationKeys rows after it.
// When suspects prove mostly good (fewer than 1 in 20 of the first kJudgedSuspects refused: a
// date column written in another style, say), guessing stops for the rest of the run.

#include <algorithm>
#include <array>
#include <atomic>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <regex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "postgres/table_facts.hpp"

namespace etl::plugins::postgres {



class SuspectRows {
 public:
  static constexpr std::size_t kFilterBits = std::size_t{1} << 24;  // 2 MiB per generation
  static constexpr std::size_t kGenerationKeys = kFilterBits / 10;  // ~1 % false suspects when full
  static constexpr int kHashes = 7;
  static constexpr std::uint64_t kJudgedSuspects = 2000;

  explicit SuspectRows(TableFacts facts);

  /// Whether there is anything to guess from.
  [[nodiscard]] bool useful() const { return checked_ || !facts_.unique_keys.empty(); }
  /// Whether guessing goes on (see `judge`).
  [[nodiscard]] bool active() const { return useful() && !given_up_.load(std::memory_order_relaxed); }

  /// Whether the row in `line` (a COPY text line without its end, of the mapped columns) is
  /// likely to be refused. Remembers its keys. One thread at a time.
  bool suspect(std::string_view line);

  /// What became of suspects (from the writers' threads): when the first kJudgedSuspects show
  /// fewer than 1 in 20 refused, guessing stops. True when this call stopped it.
  bool judge(std::uint64_t suspects, std::uint64_t refused);

  [[nodiscard]] std::uint64_t suspected() const { return suspected_; }

 private:
  /// Adds the key's hash to the filters; whether it may have been there already. A key's bits
  /// all lie in one cache line of each filter (a blocked Bloom filter): a row costs one cache
  /// miss per generation, not one per bit.
  bool remember(std::uint64_t hash);

  TableFacts facts_;
  bool checked_ = false;
  std::vector<std::optional<std::string_view>> fields_;
  std::vector<std::uint64_t> current_, previous_;
  std::size_t keys_in_current_ = 0;
  bool previous_used_ = false;  // (until the first generation is full, there is none to ask)
  std::uint64_t suspected_ = 0;
  std::atomic<std::uint64_t> judged_{0}, refused_{0};
  std::atomic<bool> decided_{false}, given_up_{false};
};

/// Appends the row in `line` (a COPY text line without its end) to `out` as one row of a
/// two-dimensional text[] literal, e.g. {"1","Ada",NULL}: what pg_temp.etl_insert_each takes.
void append_array_row(std::string& out, std::string_view line);

}  // namespace etl::plugins::postgres
