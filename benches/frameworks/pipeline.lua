-- wrk script: HTTP/1.1 pipelining. Every write sends DEPTH copies of the
-- request (wrk's method, URL path and -H headers), back to back; wrk then
-- reads DEPTH responses before writing again, and counts each response as
-- a request.
--
--   wrk -t2 -c256 -d5s -s pipeline.lua http://127.0.0.1:8080/plaintext -- 16
--
-- DEPTH is the first argument after `--`, 16 when absent (TechEmpower's
-- plaintext test pipelines 16).

local batch

function init(args)
  local depth = tonumber(args[1] or "16")
  if depth == nil or depth < 1 or depth ~= math.floor(depth) then
    error("pipeline.lua: DEPTH must be a whole number of at least 1, not " .. tostring(args[1]))
  end
  -- wrk.format() with no arguments builds one request from wrk.method,
  -- wrk.path and wrk.headers (Host included).
  batch = string.rep(wrk.format(), depth)
end

function request()
  return batch
end
