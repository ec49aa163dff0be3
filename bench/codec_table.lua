-- The codec benchmark's data (not a benchmark itself): one nested table of
-- numbers and strings, built deterministically, about 1 MiB through the
-- curio codec. JSON-compatible, so cjson can carry it too: no cycles or
-- sharing, every table either an array (1..n) or string-keyed.
--   2000 records, each {id, name, nums = 20 numbers, tags = 10 short
--   strings, nested = {x, y, label, flags = {3 booleans}}}
return function()
  local t = {}
  for i = 1, 2000 do
    local nums, tags = {}, {}
    for j = 1, 20 do
      -- integers and binary fractions alternate: exact in both encodings
      nums[j] = (j % 2 == 0) and (i * 1000 + j) or (i + j / 4)
    end
    for j = 1, 10 do tags[j] = string.format("tag%d_%d", i % 97, j) end
    t[i] = {
      id = i,
      name = "record " .. i,
      nums = nums,
      tags = tags,
      nested = { x = i * 0.5, y = -i, label = "n" .. i, flags = { i % 2 == 0, i % 3 == 0, true } },
    }
  end
  return t
end
