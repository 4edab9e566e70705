-- wrk script: announces from a fixed population of peers (PEERS, default 65536), each with its
-- own info hash (from $HASHES, hex one per line, skewed towards the first ones: a few big
-- swarms, many small), port, peer id, role (half seeders) and, if $PASSKEYS names a file of
-- passkeys, its own user's key (/KEY/announce, as clients of a private tracker do). Every
-- request is a re-announce of a random peer, numwant=50. Loopback benchmarking only.
local hashes = {}
for line in io.lines(os.getenv("HASHES")) do
  hashes[#hashes + 1] = (line:gsub("%x%x", function(h) return "%" .. h end))
end
local keys = {}
local kpath = os.getenv("PASSKEYS")
if kpath and kpath ~= "" then
  for line in io.lines(kpath) do
    if #line > 0 then keys[#keys + 1] = "/" .. line end
  end
end
math.randomseed(tonumber(os.getenv("SEED") or "1"))
local npeers = tonumber(os.getenv("PEERS") or "65536")
local paths = {}
for i = 1, npeers do
  local r = math.random()
  local h = hashes[math.min(#hashes, math.floor(r * r * r * #hashes) + 1)]
  local prefix = ""
  if #keys > 0 then prefix = keys[math.random(1, #keys)] end
  paths[i] = prefix .. "/announce?info_hash=" .. h .. "&peer_id=-WR0001-" .. string.format("%012d", i)
    .. "&port=" .. (1025 + i % 64000) .. "&uploaded=0&downloaded=0&left=" .. ((i % 2) * 1000)
    .. "&compact=1&numwant=50"
end
request = function()
  return wrk.format("GET", paths[math.random(1, npeers)])
end
