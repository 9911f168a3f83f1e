-- SPDX-License-Identifier: MIT
-- wrk: GET /v1/policies/{id} over the 10,000 seeded scenario ids.
local token = os.getenv("BENCH_TOKEN")
math.randomseed(os.time())
request = function()
	local id = string.format("bench-%05d", math.random(0, 9999))
	local headers = {}
	if token and token ~= "" then headers["Authorization"] = "Bearer " .. token end
	return wrk.format("GET", "/v1/policies/" .. id, headers)
end
