-- SPDX-License-Identifier: MIT
-- wrk: POST /v1/policies upserts over the 10,000 seeded ids, each with a
-- different port so every request really writes (policy, history, outbox,
-- generation, durable commit).
local token = os.getenv("BENCH_TOKEN")
local counter = 0
math.randomseed(os.time())
request = function()
	counter = counter + 1
	local id = string.format("bench-%05d", math.random(0, 9999))
	local port = 1024 + (counter * 7 + math.random(0, 1000)) % 60000
	local headers = { ["Content-Type"] = "application/json" }
	if token and token ~= "" then headers["Authorization"] = "Bearer " .. token end
	-- each scenario its own network: one shared network_id would derive
	-- one interface for all of them, which the store refuses
	local body = string.format(
		'{"scenario_id":"%s","network_id":"%s","profile":"custom","allowed_hosts":["203.0.113.7"],"allowed_ports":[%d]}',
		id, id, port)
	return wrk.format("POST", "/v1/policies", headers, body)
end
