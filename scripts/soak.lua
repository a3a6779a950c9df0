-- wrk script for scripts/soak: a fixed round of request kinds, each thread sending
-- them in turn, each thread stopping after its share of SOAK_REQUESTS responses.
-- Each response is checked against its status class, and every 200 against the one
-- answer all valid bodies have ({"indices":[5]}: the article's values in all three
-- body shapes). Connections answer out of order across a thread's connections, so the
-- check is per status: done() compares the counts with the round's proportions.
-- Arguments (after --): requests-per-thread, done-file. wrk's main thread sleeps for
-- the whole -d duration even when every thread has stopped, so each thread appends a
-- line to done-file when its share is answered, and scripts/soak sends wrk SIGINT
-- (which ends that sleep; the summary and done() still run) once all have.

local article = "[1,2,100,1,3,200,1]"
local values = {1, 2, 100, 1, 3, 200, 1}
local function metric_list()
  local parts = {}
  for i, v in ipairs(values) do
    parts[i] = string.format('{"time":"2020-05-22T14:13:11Z","name":"CPU","value":%d}', v)
  end
  return "[" .. table.concat(parts, ",") .. "]"
end
local json = {["Content-Type"] = "application/json"}

-- kind, status expected, method, path, headers, body
kinds = {
  {"object",        200, "POST", "/detect", json, '{"metrics":' .. metric_list() .. '}'},
  {"numbers",       200, "POST", "/detect", json, article},
  {"metric-array",  200, "POST", "/detect", json, metric_list()},
  {"malformed",     400, "POST", "/detect", json, '{"metrics":[{"value":1,}]}'},
  {"unknown-field", 400, "POST", "/detect", json, '{"metrics":[{"value":1,"cpu":2}]}'},
  {"content-type",  415, "POST", "/detect", {["Content-Type"] = "text/plain"}, article},
  {"not-found",     404, "GET",  "/detekt", {}, nil},
  {"method",        405, "GET",  "/detect", {}, nil},
}
local answer = '{"indices":[5]}'

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  limit = tonumber(args[1]) or 1000
  done_file = args[2]
  requests = {}
  for i, k in ipairs(kinds) do
    requests[i] = wrk.format(k[3], k[4], k[5], k[6])
  end
  next_kind = 0
  responses = 0
  by_status = {}
  bad_bodies = 0
  bad_example = ""
end

function request()
  next_kind = next_kind % #requests + 1
  return requests[next_kind]
end

function response(status, headers, body)
  responses = responses + 1
  by_status[status] = (by_status[status] or 0) + 1
  if status == 200 and body ~= answer then
    bad_bodies = bad_bodies + 1
    bad_example = string.sub(body or "", 1, 200)
  end
  if responses == limit then
    if done_file then
      local f = io.open(done_file, "a")
      f:write("done\n")
      f:close()
    end
    wrk.thread:stop()
  end
end

function done(summary, latency, requests_)
  local total, statuses, bad = 0, {}, 0
  local example = ""
  for _, t in ipairs(threads) do
    total = total + t:get("responses")
    for status, n in pairs(t:get("by_status")) do
      statuses[status] = (statuses[status] or 0) + n
    end
    bad = bad + t:get("bad_bodies")
    if t:get("bad_bodies") > 0 then example = t:get("bad_example") end
  end
  local expected = {}
  for _, k in ipairs(kinds) do expected[k[2]] = (expected[k[2]] or 0) + 1 end
  local failures = 0
  local line = {}
  for status, share in pairs(expected) do
    local want = total * share / #kinds
    local got = statuses[status] or 0
    -- Requests in flight when a thread stops, and connections' interleaving, leave
    -- each count off its share by at most the number of connections (checked: 1%).
    local ok = math.abs(got - want) <= math.max(64, total * 0.01)
    if not ok then failures = failures + 1 end
    table.insert(line, string.format("%d:%d(want ~%d)%s", status, got, want, ok and "" or "!"))
  end
  for status, n in pairs(statuses) do
    if not expected[status] then
      failures = failures + 1
      table.insert(line, string.format("%d:%d(unexpected)!", status, n))
    end
  end
  table.sort(line)
  io.write(string.format("soak-lua: responses %d; by status %s; wrong 200 bodies %d%s\n",
    total, table.concat(line, " "), bad, bad > 0 and (" e.g. " .. example) or ""))
  io.write(string.format("soak-lua: errors connect %d read %d write %d status %d timeout %d\n",
    summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.status,
    summary.errors.timeout))
  if failures > 0 or bad > 0 or summary.errors.timeout > 0 then
    io.write("soak-lua: FAIL\n")
  else
    io.write("soak-lua: OK\n")
  end
end
