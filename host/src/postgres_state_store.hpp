#pragma once
// The PostgreSQL state store: a row per pipeline in a table (settings.state.store "postgres"),
// for runs on several machines or in containers whose disk is thrown away.

#include <memory>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "state_store.hpp"

namespace etl::host {

/// A run takes a lease on its pipeline's row (acquire): a second run of the pipeline refuses to
/// start while the lease is held, and may take over only once it has expired (`lease` seconds
/// after the holder's last commit: a run that died leaves it to expire). Every commit renews the
/// lease and is one UPDATE guarded by the holder's run id, so a run whose lease was taken over
/// commits nothing more and stops. The table is created when missing.
std::unique_ptr<StateStore> make_postgres_state_store(const nlohmann::json& state_settings, const std::string& pipeline);

}  // namespace etl::host
