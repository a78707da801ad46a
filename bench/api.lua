-- wrk script of the `api` benchmark (bench/api.py): replays HTTP requests that bench/api.py formatted in advance,
-- in turn, and counts the answers by status. Arguments after `--`: the requests file (each request as
-- "<length in bytes>\n<raw HTTP/1.1 request>"), then how many answers to stop after (0: run for wrk's -d).
-- done() prints one line "BENCH-JSON {...}" with the counts and wrk's latency percentiles (microseconds).

local requests, total, position, limit, answered = {}, 0, 0, 0, 0
statuses = {}
samples = {}

function init(args)
  local file = assert(io.open(args[1], "rb"))
  local data = file:read("*a")
  file:close()
  local at = 1
  while at <= #data do
    local newline = data:find("\n", at, true)
    local length = tonumber(data:sub(at, newline - 1))
    total = total + 1
    requests[total] = data:sub(newline + 1, newline + length)
    at = newline + 1 + length
  end
  limit = tonumber(args[2]) or 0
end

function request()
  position = position % total + 1
  return requests[position]
end

function response(status, headers, body)
  answered = answered + 1
  local key = tostring(status)
  statuses[key] = (statuses[key] or 0) + 1
  if (status < 200 or status > 299) and #samples < 3 then
    samples[#samples + 1] = key .. " " .. string.sub(body or "", 1, 400)
  end
  if limit > 0 and answered == limit then
    -- wrk's main thread sleeps for the whole -d duration whatever its threads do: bench/api.py reads this line
    -- and interrupts it (SIGINT), which ends the run at once with the figures so far.
    io.write("BENCH-STOPPED\n")
    io.flush()
    wrk.thread:stop()
  end
end

local threads = {}

function setup(thread)
  threads[#threads + 1] = thread
end

local function quote(text)
  return '"' .. text:gsub('[%c"\\]', function(c) return string.format("\\u%04x", c:byte()) end) .. '"'
end

function done(summary, latency, rate)
  local counts, errors = {}, {}
  for _, thread in ipairs(threads) do
    for key, count in pairs(thread:get("statuses")) do
      counts[key] = (counts[key] or 0) + count
    end
    for _, sample in ipairs(thread:get("samples")) do
      errors[#errors + 1] = quote(sample)
    end
  end
  local status_list = {}
  for key, count in pairs(counts) do
    status_list[#status_list + 1] = quote(key) .. ": " .. count
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH-JSON {"requests": %d, "duration_us": %d, "bytes": %d, "socket_errors": {"connect": %d, "read": %d, ' ..
    '"write": %d, "timeout": %d}, "status_over_399": %d, "statuses": {%s}, "error_samples": [%s], ' ..
    '"latency_us": {"min": %d, "mean": %.1f, "p50": %d, "p90": %d, "p95": %d, "p99": %d, "max": %d}}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.timeout, e.status,
    table.concat(status_list, ", "), table.concat(errors, ", "),
    latency.min, latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(95),
    latency:percentile(99), latency.max))
end
