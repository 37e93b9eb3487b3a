-- Shared by the wrk scripts in bench/wrk: one line a benchmark script parses,
-- RESULT requests non-2xx-or-3xx socket-errors p50-us p99-us
function done(summary, latency, requests)
  io.write(string.format("RESULT %d %d %d %.0f %.0f\n", summary.requests, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(99)))
end
