-- wrk script for HTTP/1.1 pipelining: every write carries `depth` GET requests for the URL's
-- path (default 16), and wrk counts each response.
--   wrk -s pipeline.lua URL -- 16
local batch

function init(args)
    local depth = tonumber(args[1]) or 16
    local parts = {}
    for i = 1, depth do
        parts[i] = wrk.format("GET")
    end
    batch = table.concat(parts)
end

function request()
    return batch
end
