#pragma once
// Where a pipeline's committed source position is kept between runs (settings.state): a file per
// pipeline, or a row per pipeline in a PostgreSQL table. Each store lets one run of a pipeline
// commit at a time.

#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>

#include <nlohmann/json_fwd.hpp>

namespace etl::host {

/// A state store cannot be used: it does not parse, another run holds it, the database refused.
/// The message names the store and what to do.
class StateError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// The run's hold on the state was taken over by another run (a lease that expired): the run
/// must commit nothing more and stop.
class StateLeaseLost : public StateError {
 public:
  using StateError::StateError;
};

/// What a store keeps for a pipeline.
struct SavedState {
  std::string pipeline;      ///< the pipeline's name (settings are keyed by it)
  std::string source;        ///< the source plugin whose position it is
  std::string position;      ///< the source's JSON text (sdk::Resumable::position)
  std::string committed_at;  ///< UTC, ISO 8601, milliseconds
  std::string run;           ///< the run that committed it (ETL_RUN_ID)
  std::uint64_t settled = 0;  ///< records that run had settled up to the position

  /// The state as the JSON object a state file holds (and `state show --json` prints).
  [[nodiscard]] std::string to_json_text() const;
  /// Parses what to_json_text() wrote; throws StateError naming `where` when it does not parse
  /// or lacks a member.
  static SavedState from_json_text(const std::string& text, const std::string& where);
};

class StateStore {
 public:
  virtual ~StateStore() = default;
  /// Takes the pipeline's state for this run. Throws StateError when another run holds it.
  virtual void acquire(const std::string& run_id) = 0;
  /// The state committed last, or nothing when none was. Throws StateError when it does not parse.
  [[nodiscard]] virtual std::optional<SavedState> load() = 0;
  /// Makes `state` the committed state, durably (it survives a crash of the process or machine
  /// from the moment this returns). Throws StateError; the previous state then stands.
  virtual void commit(const SavedState& state) = 0;
  /// Keeps the hold acquire() took while there is nothing new to commit (a lease renewed).
  /// Throws StateLeaseLost when another run has taken it over.
  virtual void renew() {}
  /// Forgets the state (the next run starts from the beginning).
  virtual void reset() = 0;
  /// Lets go of what acquire() took. Never throws.
  virtual void release() noexcept = 0;
  /// "file state/tokens.state.json", "postgres table etl_state on db:5432/app": for messages.
  [[nodiscard]] virtual std::string describe() const = 0;
};

/// The file store: `<folder>/<pipeline>.state.json`, replaced atomically (a temporary file
/// written and synced, renamed over the old one, the folder synced), so at any moment the file
/// holds either the old state or the new one. `<pipeline>.state.lock` (flock) keeps a second run
/// of the pipeline out while one runs.
class FileStateStore final : public StateStore {
 public:
  FileStateStore(std::string folder, std::string pipeline);
  ~FileStateStore() override;
  void acquire(const std::string& run_id) override;
  [[nodiscard]] std::optional<SavedState> load() override;
  void commit(const SavedState& state) override;
  void reset() override;
  void release() noexcept override;
  [[nodiscard]] std::string describe() const override;

  [[nodiscard]] const std::string& file() const noexcept { return file_; }
  /// The temporary file commit() writes before renaming it (a test cuts it to show a torn write
  /// never replaces the state).
  [[nodiscard]] std::string temporary_file() const;

 private:
  std::string folder_;
  std::string pipeline_;
  std::string file_;
  std::string lock_file_;
  int lock_fd_ = -1;
};

/// The store `settings.state` names, for the pipeline called `pipeline`. Throws StateError for
/// a setting that cannot work (checked again by the pipeline schema before).
std::unique_ptr<StateStore> make_state_store(const nlohmann::json& state_settings, const std::string& pipeline);

/// UTC now as "2026-12-03T08:45:12.345Z".
std::string utc_now_millis();

}  // namespace etl::host
