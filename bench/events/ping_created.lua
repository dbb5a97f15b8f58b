-- wrk script: POST ping_created deliveries shaped exactly as Hasura sends
-- them, each with a unique event id (thread number + counter) and a random
-- ping id. The secret comes from the environment (bench/events sets it).
local counter = 0
thread_no = 0 -- set per thread by setup(); a global so thread:set reaches it
local threads = {}

function setup(thread)
  thread:set("thread_no", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  math.randomseed(os.time() * 1000 + thread_no)
end

local function hex(n, width)
  return string.format("%0" .. width .. "x", n)
end

local function random_uuid()
  return string.format("%08x-%04x-4%03x-%04x-%012x",
    math.random(0, 0x7fffffff), math.random(0, 0xffff), math.random(0, 0xfff),
    0x8000 + math.random(0, 0x3fff), math.random(0, 0x7fffffff) * 0x10000 + math.random(0, 0xffff))
end

local secret = os.getenv("SHALA_WEBHOOK_SECRET") or ""

request = function()
  counter = counter + 1
  local event_id = "e0000000-0000-4000-8" .. hex(thread_no, 3) .. "-" .. hex(counter, 12)
  local now = os.date("!%Y-%m-%dT%H:%M:%S")
  local body = '{"created_at":"' .. now .. '.123456","delivery_info":{"current_retry":0,"max_retries":5},' ..
    '"event":{"data":{"new":{"created_at":"' .. now .. '.120001+00:00","id":"' .. random_uuid() ..
    '","message":"नमस्ते","sent_by":"7"},"old":null},"op":"INSERT",' ..
    '"session_variables":{"x-hasura-role":"admin","x-hasura-user-id":"7"},' ..
    '"trace_context":{"sampling_state":"1","span_id":"a1b2c3d4e5f60718","trace_id":"0af7651916cd43dd8448eb211c80319c"}},' ..
    '"id":"' .. event_id .. '","table":{"name":"ping","schema":"public"},"trigger":{"name":"ping_created"}}'
  return wrk.format("POST", nil, {
    ["Content-Type"] = "application/json",
    ["User-Agent"] = "hasura-graphql-engine/v2.44.0",
    ["X-Shala-Webhook-Secret"] = secret,
  }, body)
end
