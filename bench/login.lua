-- wrk script: POST /api/auth/login with the benchmark user's real credentials,
-- so every request makes the server do a full argon2 verification.
--
-- bench/run.py passes the credentials in the environment:
--   BENCH_EMAIL=bench@example.com BENCH_PASSWORD='Secret1!' \
--     wrk -t2 -c32 -d10s -s bench/login.lua http://127.0.0.1:PORT/api/auth/login

local function json_string(s)
  return '"' .. s:gsub('[%c"\\]', function(c)
    return string.format("\\u%04x", c:byte())
  end) .. '"'
end

local email = os.getenv("BENCH_EMAIL") or "bench@example.com"
local password = os.getenv("BENCH_PASSWORD") or "Secret1!"

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"email":' .. json_string(email) .. ',"password":' .. json_string(password) .. '}'
