-- wrk script for bench/load.sh: one request shape per run, from the environment.
--   LOAD_METHOD  GET or POST (default POST)
--   LOAD_BODY    request body (default none)
--   LOAD_TOKEN   bearer token for the Authorization header (default none)
-- done() prints one machine-readable line for load.sh:
--   RESULT requests=N duration_us=D p50_us=X p99_us=Y bad_status=S socket_errors=E

wrk.method = os.getenv("LOAD_METHOD") or "POST"
local body = os.getenv("LOAD_BODY")
if body ~= nil and body ~= "" then
  wrk.body = body
  wrk.headers["Content-Type"] = "application/json"
end
local token = os.getenv("LOAD_TOKEN")
if token ~= nil and token ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. token
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "RESULT requests=%d duration_us=%d p50_us=%d p99_us=%d bad_status=%d socket_errors=%d\n",
    summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99),
    e.status, e.connect + e.read + e.write + e.timeout))
end
