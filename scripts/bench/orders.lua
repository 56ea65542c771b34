-- wrk script for scripts/bench/intake.py: POST an order with a unique dossier code per request.
--   wrk -t2 -c8 -d12s -s orders.lua http://127.0.0.1:PORT -- /api/v1/orders TOKEN RUNTAG
-- args: path, bearer token ("-" for none), a tag unique to this run (dossier codes are
-- RUNTAG-<thread>-<n>, so no two requests of any run repeat one). done() prints one line
--   WRKJSON {...}
-- with the request count, latency percentiles in microseconds and the status counts.

local threads = {}

function setup(thread)
  thread:set("tid", #threads + 1)   -- a global of the thread's own Lua state (no `local tid`!)
  table.insert(threads, thread)
end

function init(args)
  path = args[1] or "/api/v1/orders"
  prefix = (args[3] or "B") .. "-" .. tostring(tid) .. "-"
  headers = {["Content-Type"] = "application/json"}
  if args[2] and args[2] ~= "-" then
    headers["Authorization"] = "Bearer " .. args[2]
  end
  appointment = os.date("!%Y-%m-%d", os.time() + 3 * 86400)
  n = 0
  s201 = 0
  s200 = 0
  s2xx = 0
  s4xx = 0
  s5xx = 0
  sother = 0
end

function request()
  n = n + 1
  local body = '{"direction":"result_to_citizen","dossier_code":"' .. prefix .. n .. '",'
    .. '"procedure_code":"1.011442.000.00.00.H55","procedure_name":"Cấp đổi giấy phép lái xe",'
    .. '"issuing_agency":"Sở Xây dựng tỉnh Quảng Ngãi",'
    .. '"recipient":{"name":"Nguyễn Thị Hoa","phone":"0905123456"},'
    .. '"address":{"province_code":"51","commune_code":"21025","detail":"12 Hùng Vương"},'
    .. '"postage_vnd":26000,"appointment_date":"' .. appointment .. '"}'
  return wrk.format("POST", path, headers, body)
end

function response(status, hdrs, body)
  if status == 201 then s201 = s201 + 1
  elseif status == 200 then s200 = s200 + 1
  elseif status >= 200 and status < 300 then s2xx = s2xx + 1
  elseif status >= 400 and status < 500 then s4xx = s4xx + 1
  elseif status >= 500 then s5xx = s5xx + 1
  else sother = sother + 1 end
end

function done(summary, latency, requests)
  local c = {s201 = 0, s200 = 0, s2xx = 0, s4xx = 0, s5xx = 0, sother = 0}
  for _, t in ipairs(threads) do
    for k, _ in pairs(c) do c[k] = c[k] + (t:get(k) or 0) end
  end
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,'
    .. '"s201":%d,"s200":%d,"s2xx":%d,"s4xx":%d,"s5xx":%d,"sother":%d,'
    .. '"err_connect":%d,"err_read":%d,"err_write":%d,"err_timeout":%d,"err_status":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, c.s201, c.s200, c.s2xx, c.s4xx, c.s5xx, c.sother,
    e.connect, e.read, e.write, e.timeout, e.status))
end
