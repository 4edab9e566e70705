-- wrk script: announces over a fixed set of info hashes (hex, one per line in $HASHES),
-- random peer ports, half seeders, numwant=50. Loopback benchmarking only.
local hashes = {}
local path = os.getenv("HASHES")
for line in io.lines(path) do
  hashes[#hashes + 1] = (line:gsub("%x%x", function(h) return "%" .. h end))
end
math.randomseed(tonumber(os.getenv("SEED") or "1"))
local counter = 0
request = function()
  counter = counter + 1
  local h = hashes[math.random(1, #hashes)]
  local port = math.random(1025, 65535)
  local left = (counter % 2) * 1000
  local p = "/announce?info_hash=" .. h .. "&peer_id=-WR0001-" .. string.format("%012d", counter)
    .. "&port=" .. port .. "&uploaded=0&downloaded=0&left=" .. left .. "&compact=1&numwant=50"
  return wrk.format("GET", p)
end
