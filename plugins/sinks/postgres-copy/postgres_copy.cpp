// postgres-copy: bulk loads through COPY, in batches of one transaction each on a few
// connections, with every row's own outcome: a row the server refuses is found (by the line
// COPY names, by a guess from the table's definition, or by bisection) and rejected with its own
// SQLSTATE and message, the rest of its batch still stored; ok only once the batch committed; a
// batch whose connection was lost is decided by its transaction id, never guessed.
//
// The parts (each tested alone):
//   BatchWriter      (batch_writer.hpp)       batches, connections, reconnects, outcomes
//   BatchTransaction (batch_transaction.hpp)  one batch's statements over a live session
//   isolate_rows     (batch_isolation.hpp)    which rows a failed statement is to blame on
//   SuspectRows      (suspect_rows.hpp)       which rows will fail, guessed from the table
// and the shared PostgreSQL library (plugins/common/postgres): sessions, the row plan, table
// facts, the commit resolver, the retry policy.

#include "batch_writer.hpp"
#include "etl/sdk.hpp"
#include "postgres/connector.hpp"
#include "postgres/row_plan.hpp"
#include "postgres/write_target.hpp"

namespace etl::plugins::postgres {
namespace {

struct Config : PgConnection, WriteTarget {
  int batch_rows = 4000;
  int batch_bytes = 4 << 20;
  bool guess_failures = true;
  int connections = 2;
  sdk::RetryPolicy retry;
  double answer_timeout = 60;
  double settle_timeout = 10;
  double batch_wait = 1;
};

class PostgresCopySink final : public sdk::Sink {
 public:
  static sdk::ConfigMap<Config> config_map() {
    sdk::ConfigMap<Config> map;
    declare_connection(map);
    declare_table_keys(map, /*statement_mode_exists=*/false);
    map.key("mode", &WriteTarget::mode,
            "insert: COPY into the table; upsert: COPY into a staging table of the session, then INSERT ... ON "
            "CONFLICT (conflict_columns) DO UPDATE from it.")
        .one_of({"insert", "upsert"});
    declare_upsert_keys(map);
    map.key("batch_rows", &Config::batch_rows,
            "Rows per batch at most; each batch is one transaction. The sink holds at most connections + 2 batches (and "
            "the host their records).")
        .minimum(1)
        .maximum(1000000);
    map.key("batch_wait", &Config::batch_wait,
            "Seconds after its first row that a batch which is not full is sent anyway, so that rows which come "
            "slowly (a followed source, a service) are stored soon rather than when a batch fills.")
        .minimum(0.001)
        .maximum(3600);
    map.key("batch_bytes", &Config::batch_bytes, "Bytes of COPY data per batch at most.").minimum(1024).maximum(256 << 20);
    map.key("guess_failures", &Config::guess_failures,
            "insert: guess from the table's definition (types, NOT NULL, CHECKs of the form column <op> number, unique keys "
            "already seen) which rows the server will refuse, and try those alone after their batch's COPY, all in one "
            "statement: bad rows then cost no COPY and no exchange of their own. The server still decides every row; a "
            "wrong guess costs time only.");
    map.key("connections", &Config::connections,
            "Connections loading batches at once; about the server's cores (2-4) is best, each loads its own batch.")
        .minimum(1)
        .maximum(64);
    sdk::RetryPolicy::declare(map, &Config::retry,
                              "Reconnects after a lost connection or server restart (attempts count failures in a row), "
                              "and tries of a batch that met a serialization failure, deadlock or resource error.");
    map.key("answer_timeout", &Config::answer_timeout,
            "Seconds without any answer while a batch is in progress before the connection is taken as lost.")
        .exclusive_minimum(0);
    map.key("settle_timeout", &Config::settle_timeout,
            "Seconds to wait for the server process of a lost connection to end before its batch is decided.")
        .minimum(0);
    return map;
  }

  PostgresCopySink(const Config& config, sdk::Context& context) : plan_(config) {
    if (!config.casts.empty()) {
      throw sdk::ConfigError("/casts", "COPY loads text into the columns' own types; casts do not apply");
    }
    BatchOptions options;
    options.connections = static_cast<std::size_t>(config.connections);
    options.batch_rows = static_cast<std::size_t>(config.batch_rows);
    options.batch_bytes = static_cast<std::size_t>(config.batch_bytes);
    options.retry = config.retry;
    options.settle_timeout_ms = static_cast<long>(config.settle_timeout * 1000);
    options.batch_wait = std::chrono::milliseconds(static_cast<long>(config.batch_wait * 1000));
    options.guess_failures = config.guess_failures;
    writer_ = std::make_unique<BatchWriter>(plan_, ConnectTarget::from(config, config.answer_timeout), std::move(options),
                                            context);
  }

  void open(sdk::OutcomeReceiver& outcomes) override { writer_->open(outcomes); }
  void write(std::span<const sdk::Record> records) override { writer_->write(records); }
  void finish() override { writer_->finish(); }

 private:
  RowPlan plan_;
  std::unique_ptr<BatchWriter> writer_;
};

}  // namespace
}  // namespace etl::plugins::postgres

ETL_PLUGIN(etl::plugins::postgres::PostgresCopySink, "postgres-copy", "1.0.0",
           "Bulk loads into PostgreSQL through COPY, in batches of one transaction each, with every row's own outcome");
