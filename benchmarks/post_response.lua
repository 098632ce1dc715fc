-- wrk script: POST a realistic response; each request gets its own Idempotency-Key so
-- nothing is de-duplicated away. Keys are "<run>-<thread>-<counter>": NPSLOOP_BENCH_RUN
-- is unique per wrk run (the benchmark sets it), because wrk's math.random is not seeded
-- and would give every run the same keys — later runs would measure cheap duplicates.
local counter = 0
local key = os.getenv("NPSLOOP_BENCH_KEY") or ""
local run = os.getenv("NPSLOOP_BENCH_RUN") or tostring(os.time())
local threads = 0
local scores = {0, 3, 5, 6, 7, 8, 9, 10}
local comments = {"Support took days to answer", "Great product, easy to set up", "Too expensive for what it does",
                  "It crashes when I export reports", "Fine", ""}
setup = function(thread)
  threads = threads + 1
  thread:set("tid", run .. "-" .. threads)
end
request = function()
  counter = counter + 1
  local score = scores[(counter % #scores) + 1]
  local comment = comments[(counter % #comments) + 1]
  local body = string.format('{"score": %d, "comment": "%s", "customer": {"id": "cust-%d", "segment": "smb"}, ' ..
    '"survey": {"touchpoint": "support", "kind": "transactional", "channel": "email"}, "properties": {"plan": "pro"}}',
    score, comment, counter % 5000)
  local headers = {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. key,
                   ["Idempotency-Key"] = tid .. "-" .. counter}
  return wrk.format("POST", "/v1/responses", headers, body)
end
