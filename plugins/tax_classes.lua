-- tax_classes: the store's tax classes, from the v2 list (read-only in v2) 250 at a time:
-- one request for nearly every store, no count endpoint, no child call. The default class
-- (id 0) is never listed and exists everywhere. Backed up for their names: products point
-- at a class by id, and ids differ between stores.
--
-- Restore: a batch of up to 50 costs one read of the target's classes (a page per 250)
-- and, when some are missing, one v3 POST /tax/classes (the API's batch limit is 50). A
-- class is matched by its own id in the same store, else by name (case-insensitive, as
-- names are unique so); the match is remembered in the id map. Only the name can be
-- written, so a matched class is always unchanged.
local R = require("_restore")

local LIMIT = 250

local function live_classes(api)
    local out, page = {}, 1
    while true do
        local status, body = api.get("/v2/tax_classes", { page = page, limit = LIMIT })
        if status == 204 then return out end
        if status ~= 200 then
            error("reading the target's tax classes: " .. R.message(api, status, body), 0)
        end
        local list = api.json.decode(body)
        for _, c in ipairs(list) do out[#out + 1] = c end
        if #list < LIMIT then return out end
        page = page + 1
    end
end

local function lower(s) return type(s) == "string" and s:lower() or "" end

local function match(api, live, rec)
    for _, c in ipairs(live) do
        if api.same_store and tonumber(c.id) == tonumber(rec.id) then return c end
    end
    for _, c in ipairs(live) do
        if lower(c.name) == lower(rec.name) then return c end
    end
end

local function write(api, batch)
    local live = live_classes(api)
    local make = {}
    for _, item in ipairs(batch) do
        local c = match(api, live, item.rec)
        if c then
            api.remember("tax_classes", item.id, c.id)
            api.report(item.id, "unchanged")
        elseif api.dry_run then
            api.report(item.id, "created")
        else
            make[#make + 1] = item
        end
    end
    if #make == 0 then return end
    local bodies = {}
    for i, item in ipairs(make) do bodies[i] = { name = item.rec.name } end
    local status, answer = api.post("/v3/tax/classes", api.json.array(bodies))
    if status ~= 200 and status ~= 201 then
        local why = R.message(api, status, answer)
        for _, item in ipairs(make) do api.report(item.id, "failed", why) end
        return
    end
    local by_name = {}
    for _, c in ipairs(R.data(api, answer) or {}) do by_name[lower(c.name)] = c end
    for _, item in ipairs(make) do
        local c = by_name[lower(item.rec.name)]
        if c then
            api.remember("tax_classes", item.id, c.id)
            api.report(item.id, "created")
        else
            api.report(item.id, "failed", "the API's answer does not hold the new class")
        end
    end
end

return {
    contract = 1,
    type = "tax_classes",
    version = "1.0.0",
    scope = "store_v2_information_read_only",
    natural_key = { "name" },
    list = {
        api = "v2",
        path = "/tax_classes",
        paging = "page",
        limit = LIMIT,
    },
    restore = {
        batch = 50,
        parallel = 1,
        write = write,
    },
}
