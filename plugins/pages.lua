-- pages: web pages of every type, with their bodies (the API leaves the
-- body out unless include=body is asked for).
--
-- Restore: parents first (the core orders the plan by parent_id), 50 a
-- batch. The API has no url filter, so each batch reads the target's pages
-- once (250 a call) and matches locally: by id (same store), the id map,
-- then (channel_id, url), or (channel_id, type, name) for link pages, which
-- have no url. Then one call per page written. Blog pages cannot be created
-- through the API: a missing one is reported skipped.
local R = require("_restore")

local PATH = "/v3/content/pages"

local function key_of(p)
    if type(p.url) == "string" and p.url ~= "" then
        return ("%s|%s"):format(tostring(p.channel_id or 1), p.url)
    end
    return ("%s|%s|%s"):format(tostring(p.channel_id or 1), tostring(p.type), tostring(p.name))
end

local function index(api)
    local by_id, by_key = {}, {}
    for _, p in ipairs(R.all(api, PATH, { include = "body" })) do
        by_id[tonumber(p.id)] = p
        by_key[key_of(p)] = p
    end
    return { id = by_id, key = by_key }
end

-- parent_id through the id map; channel_id is the target's own: mapped by
-- name (channels), and channel 1, the default storefront, exists everywhere.
-- Returns a skip reason when the page's channel is not in the target.
local function references(api, body, notes)
    local parent = tonumber(body.parent_id)
    if parent and parent ~= 0 then
        local m = api.map("pages", parent)
        if m == nil and api.same_store then m = parent end
        if m == nil then
            notes[#notes + 1] = ("parent page %d is not in the target store; restored at the "
                .. "top level"):format(parent)
            m = 0
        end
        body.parent_id = m
    end
    local ch = tonumber(body.channel_id)
    if not api.same_store and ch then
        local m = api.map("channels", ch)
        if m then body.channel_id = m
        elseif ch ~= 1 then
            return ("channel %d is not in the target store (no channel of that name), and a "
                .. "page belongs to its channel"):format(ch)
        end
    end
end

local function find(api, live, id, body)
    local p
    if api.same_store then p = live.id[tonumber(id)] end
    local mapped = api.map("pages", id)
    if p == nil and mapped ~= nil then p = live.id[tonumber(mapped)] end
    return p or live.key[key_of(body)]
end

local function update(api, id, p, body, note)
    local fields = R.differs(p, body)
    api.remember("pages", id, p.id)
    if #fields == 0 then return api.report(id, "unchanged", note) end
    if api.dry_run then return api.report(id, "updated", note, fields) end
    local put = R.copy(body)
    put.channel_id = nil -- fixed at create; the match already agrees on it
    local status, answer = api.put(PATH .. "/" .. math.floor(p.id), put)
    if status == 200 or status == 201 then return api.report(id, "updated", note, fields) end
    return api.report(id, "failed", R.message(api, status, answer))
end

local function one(api, item, live)
    local id, notes = item.id, {}
    local body = R.strip(item.rec, { "id" })
    local skip = references(api, body, notes)
    if skip then return api.report(id, "skipped", skip) end
    local note = table.concat(notes, "; ")
    local p = find(api, live, id, body)
    if p ~= nil then return update(api, id, p, body, note) end
    if body.type == "blog" then
        return api.report(id, "skipped", "a blog-type page cannot be created through the API "
            .. "(only in the control panel); create it there, then restore again")
    end
    if api.dry_run then return api.report(id, "created", note) end
    local status, answer = api.post(PATH, body)
    if status == 409 or (status == 422 and tostring(answer):find("already used", 1, true)) then
        -- Another page holds the url now: update that one instead.
        local fresh = index(api)
        p = fresh.key[key_of(body)]
        if p ~= nil then return update(api, id, p, body, note) end
    end
    if status ~= 200 and status ~= 201 then
        return api.report(id, "failed", R.message(api, status, answer))
    end
    local made = R.data(api, answer)
    if type(made) == "table" and made[1] ~= nil then made = made[1] end
    api.remember("pages", id, made.id)
    live.id[tonumber(made.id)] = made
    live.key[key_of(made)] = made
    return api.report(id, "created", note)
end

return {
    contract = 1,
    type = "pages",
    version = "1.0.0",
    scope = "store_v2_content_read_only",
    depends = { "channels" },
    natural_key = { "channel_id", "url" },
    list = {
        api = "v3",
        path = PATH:sub(4),
        paging = "page",
        limit = 250,
        query = { include = "body" },
    },
    restore = {
        batch = 50,
        parent = "parent_id",
        needs = { channel_id = "channels" },
        write = function(api, batch)
            local live = index(api)
            for _, item in ipairs(batch) do
                local ok, err = pcall(one, api, item, live)
                if not ok then api.report(item.id, "failed", tostring(err)) end
            end
        end,
    },
}
