-- bench/http.lua — the wrk script of bench/http.sh (docs/bench.md, "http").
--
--   wrk -t1 -c16 -d3s -s bench/http.lua http://127.0.0.1:PORT -- MODE key=value...
--
-- Every request is built by request(), so that bodies vary the way a fleet's
-- do: the agent id goes round `agents` ids (prefix .. 5 digits), and the
-- sample timestamp grows by one millisecond per request. The same script,
-- pointed at nginx, sends byte for byte the same requests (same path, same
-- headers, same body), so the reference answers exactly what gotuned answers.
--
-- Modes:
--   json   POST /api/v1/telemetry, application/json: agent facts and one
--          sample with 16 Ps (the README's example, varied)
--   prom   the same data in Prometheus text format, POSTed to the
--          Pushgateway's /metrics/job/gotuned/instance/<agent id>
--   etcd   the same JSON body as the value of key telemetry/<id>/<ts>,
--          base64 in etcd's v3 JSON gateway: POST /v3/kv/put
--   text   POST /api/v1/telemetry?agent=<id>&service=..., text/plain: the
--          file body=PATH (SCHED lines) as it is
--   poll   GET /api/v1/agents/<id>/config with If-None-Match: the ETag of
--          that agent from the file etags=PATH ("id etag" per line)
--   get    GET path=PATH
--
-- Options: expect=STATUS[,STATUS] (a response with any other status is an
-- error), agents=N (1000), prefix=P (agent id prefix), service=S,
-- body=PATH, etags=PATH, path=PATH.
--
-- done() prints one line: "HTTPBENCH " and a JSON object with the requests
-- completed, the duration, responses with the expected status (ok) and
-- without (bad_status, and the first such status), wrk's socket errors and
-- the latency percentiles in microseconds.

local threads = {}
local next_id = 0

function setup(thread)
   thread:set("tid", next_id)
   next_id = next_id + 1
   table.insert(threads, thread)
end

local opts = {}
local mode
local expect = {}
local n_agents, prefix
local counter = 0
local ts0
ok, bad, refused, first_bad = 0, 0, 0, 0

local function slurp(path)
   local f = assert(io.open(path, "rb"), "cannot open " .. path)
   local s = f:read("*a")
   f:close()
   return s
end

-- base64 (RFC 4648) for etcd's JSON gateway.
local b64chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local b64 = {}
for i = 1, 64 do b64[i - 1] = b64chars:sub(i, i) end
local function base64(s)
   local out, n = {}, #s
   for i = 1, n, 3 do
      local a, b, c = s:byte(i, i + 2)
      local v = a * 65536 + (b or 0) * 256 + (c or 0)
      local c1 = math.floor(v / 262144) % 64
      local c2 = math.floor(v / 4096) % 64
      local c3 = math.floor(v / 64) % 64
      local c4 = v % 64
      out[#out + 1] = b64[c1] .. b64[c2] .. (b and b64[c3] or "=") .. (c and b64[c4] or "=")
   end
   return table.concat(out)
end

-- Per-P run queues of the 16-P sample: a few shapes, one chosen per agent,
-- so bodies differ in content as well as in ids.
local runqs = {
   { 0, 3, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 },
   { 12, 0, 1, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 1 },
   { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 },
   { 1, 1, 2, 1, 0, 3, 1, 0, 2, 1, 0, 1, 4, 0, 1, 2 },
   { 0, 9, 0, 0, 0, 0, 0, 0, 17, 0, 0, 0, 0, 0, 0, 0 },
   { 2, 0, 0, 5, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0 },
   { 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0 },
   { 3, 4, 2, 6, 1, 0, 0, 0, 0, 2, 5, 0, 0, 1, 0, 0 },
}

local function agent_id(k)
   return string.format("%s%05d", prefix, k)
end

-- One sample of agent k at time ts, as gotuned's JSON telemetry.
local function json_body(k, ts)
   local q = runqs[k % #runqs + 1]
   return string.format(
      '{"agent":{"id":"%s","service":"%s","hostname":"node-%d","pid":%d,' ..
      '"runtime":"go1.19.8","num_cpu":16,"cpu_limit":4.2},' ..
      '"samples":[{"ts_ms":%.0f,"gomaxprocs":16,"idle_procs":%d,"threads":20,' ..
      '"spinning_threads":1,"idle_threads":5,"global_runq":%d,"local_runq":[%s],' ..
      '"goroutines":%d,"sched_latency_us":{"p50":12.5,"p99":%d}}]}',
      agent_id(k), opts.service, k % 50, 4000 + k, ts, k % 11, k % 3,
      table.concat(q, ","), 100 + k % 400, 300 + k % 700)
end

-- The same sample in Prometheus text exposition format (the Pushgateway
-- refuses timestamps; the grouping key names the agent).
local function prom_body(k, ts)
   local q = runqs[k % #runqs + 1]
   local t = {
      "# TYPE go_sched_gomaxprocs gauge",
      "go_sched_gomaxprocs 16",
      "# TYPE go_sched_idle_procs gauge",
      string.format("go_sched_idle_procs %d", k % 11),
      "# TYPE go_sched_threads gauge",
      "go_sched_threads 20",
      "# TYPE go_sched_spinning_threads gauge",
      "go_sched_spinning_threads 1",
      "# TYPE go_sched_idle_threads gauge",
      "go_sched_idle_threads 5",
      "# TYPE go_sched_global_runq gauge",
      string.format("go_sched_global_runq %d", k % 3),
      "# TYPE go_sched_local_runq gauge",
   }
   for p = 1, #q do
      t[#t + 1] = string.format('go_sched_local_runq{p="%d"} %d', p - 1, q[p])
   end
   t[#t + 1] = "# TYPE go_sched_goroutines gauge"
   t[#t + 1] = string.format("go_sched_goroutines %d", 100 + k % 400)
   t[#t + 1] = "# TYPE go_sched_latency_us gauge"
   t[#t + 1] = 'go_sched_latency_us{quantile="0.5"} 12.5'
   t[#t + 1] = string.format('go_sched_latency_us{quantile="0.99"} %d', 300 + k % 700)
   t[#t + 1] = "# TYPE go_sched_sample_ts_ms gauge"
   t[#t + 1] = string.format("go_sched_sample_ts_ms %.0f", ts)
   t[#t + 1] = "# TYPE gotuned_agent_info gauge"
   t[#t + 1] = string.format('gotuned_agent_info{service="%s",hostname="node-%d",pid="%d",' ..
      'runtime="go1.19.8",num_cpu="16",cpu_limit="4.2"} 1', opts.service, k % 50, 4000 + k)
   return table.concat(t, "\n") .. "\n"
end

local text_body, etags

function init(args)
   mode = args[1]
   for i = 2, #args do
      local k, v = args[i]:match("^([%w_]+)=(.*)$")
      assert(k, "bad option " .. args[i])
      opts[k] = v
   end
   for s in (opts.expect or "200"):gmatch("%d+") do expect[tonumber(s)] = true end
   n_agents = tonumber(opts.agents or "1000")
   prefix = opts.prefix or "bench-"
   opts.service = opts.service or "orders"
   -- Each thread starts at its own agent and its own millisecond, so
   -- threads never send the same agent the same timestamp.
   counter = (tid or 0) * 7919
   ts0 = 1733300000000 + (tid or 0) * 100000000
   if mode == "text" then
      text_body = slurp(assert(opts.body, "text needs body=PATH"))
   elseif mode == "poll" then
      etags = {}
      for line in slurp(assert(opts.etags, "poll needs etags=PATH")):gmatch("[^\n]+") do
         local id, tag = line:match("^(%S+)%s+(.+)$")
         if id then etags[#etags + 1] = { id, tag } end
      end
      assert(#etags > 0, "no ETags in " .. opts.etags)
   elseif mode ~= "json" and mode ~= "prom" and mode ~= "etcd" and mode ~= "get" then
      error("unknown mode " .. tostring(mode))
   end
end

function request()
   counter = counter + 1
   local k = counter % n_agents
   local ts = ts0 + counter
   if mode == "json" then
      return wrk.format("POST", "/api/v1/telemetry",
         { ["Content-Type"] = "application/json" }, json_body(k, ts))
   elseif mode == "prom" then
      return wrk.format("POST", "/metrics/job/gotuned/instance/" .. agent_id(k),
         { ["Content-Type"] = "text/plain; version=0.0.4" }, prom_body(k, ts))
   elseif mode == "etcd" then
      local key = string.format("telemetry/%s/%.0f", agent_id(k), ts)
      return wrk.format("POST", "/v3/kv/put", { ["Content-Type"] = "application/json" },
         '{"key":"' .. base64(key) .. '","value":"' .. base64(json_body(k, ts)) .. '"}')
   elseif mode == "text" then
      return wrk.format("POST", "/api/v1/telemetry?agent=" .. agent_id(k) .. "&service=" ..
         opts.service .. "&num_cpu=64&cpu_limit=8", { ["Content-Type"] = "text/plain" },
         text_body)
   elseif mode == "poll" then
      local e = etags[counter % #etags + 1]
      return wrk.format("GET", "/api/v1/agents/" .. e[1] .. "/config",
         { ["If-None-Match"] = e[2] })
   else
      return wrk.format("GET", opts.path or "/")
   end
end

function response(status, headers, body)
   if expect[status] then
      ok = ok + 1
   elseif status == 503 and headers["Retry-After"] then
      -- gotuned refusing samples it has no room for: the agent would send
      -- them again. Counted apart, not as an error.
      refused = refused + 1
   else
      bad = bad + 1
      if first_bad == 0 then first_bad = status end
   end
end

function done(summary, latency, requests)
   local okn, badn, refn, first = 0, 0, 0, 0
   for _, t in ipairs(threads) do
      okn = okn + (t:get("ok") or 0)
      badn = badn + (t:get("bad") or 0)
      refn = refn + (t:get("refused") or 0)
      local f = t:get("first_bad") or 0
      if first == 0 then first = f end
   end
   local e = summary.errors
   io.write(string.format(
      'HTTPBENCH {"requests":%d,"duration_us":%d,"ok":%d,"refused":%d,"bad_status":%d,"first_bad":%d,' ..
      '"connect":%d,"read":%d,"write":%d,"timeout":%d,"p50_us":%d,"p99_us":%d,' ..
      '"max_us":%d,"bytes":%d}\n',
      summary.requests, summary.duration, okn, refn, badn, first, e.connect, e.read, e.write,
      e.timeout, latency:percentile(50), latency:percentile(99), latency.max, summary.bytes))
end
