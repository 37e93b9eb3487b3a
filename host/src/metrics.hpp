#pragma once
// Run metrics for batch jobs, pushed to a Prometheus Pushgateway at the end of each run.

#include <string>

#include "etl/sdk/plugin.hpp"

namespace etl::host {

/// Pushes the run's metrics to the Pushgateway at `url` (http://host:port), grouped by
/// job="etl-host" and pipeline=`pipeline`. A successful run replaces the group, including
/// etl_last_success_timestamp_seconds; a failed one adds to it, so the last success time of an
/// earlier run survives. Returns an error message, empty on success.
std::string push_run_metrics(const std::string& url, const std::string& pipeline, const sdk::Summary& summary,
                             int exit_code);

}  // namespace etl::host
