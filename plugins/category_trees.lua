-- category_trees: the trees (one per channel) that categories hang from.
--
-- Restore: a batch of up to 50 trees costs one read of the target's trees, one read of its
-- channels (only when a tree must be created) and one upsert (PUT /catalog/trees) for every
-- tree that is created or renamed. A tree is matched by its own id (same store), then the id
-- map, then its name, then (same store) the tree that holds its channel: a channel has one
-- tree. A tree whose channel does not exist in the target, or already has another tree, is
-- skipped with the reason. Channel ids are the target's own: mapped by name (channels);
-- channel 1, the default storefront, exists everywhere.
local R = require("_restore")

local TREES = "/v3/catalog/trees"

-- Every tree of the target store.
local function live_trees(api)
    local out, page = {}, 1
    repeat
        local status, body = api.get(TREES, { limit = 250, page = page })
        if status ~= 200 then
            error("reading the target's trees: " .. R.message(api, status, body), 0)
        end
        local doc = api.json.decode(body)
        for _, t in ipairs(doc.data or {}) do out[#out + 1] = t end
        local p = doc.meta and doc.meta.pagination or {}
        page = page + 1
    until (p.total_pages or 1) < page
    return out
end

local function channel_ids(api)
    local status, body = api.get("/v3/channels", { limit = 250 })
    if status ~= 200 then
        error("reading the target's channels: " .. R.message(api, status, body), 0)
    end
    local out = {}
    for _, c in ipairs(R.data(api, body) or {}) do out[c.id] = true end
    return out
end

local function first_channel(rec)
    return type(rec.channels) == "table" and rec.channels[1] or nil
end

-- The target's id of the tree's channel: the same in the same store, else through the id
-- map; nil when it cannot be mapped.
local function target_channel(api, ch)
    if ch == nil or api.same_store then return ch end
    local m = api.map("channels", ch)
    if m == nil and tonumber(ch) == 1 then return 1 end
    return m
end

local function holder_of(trees, channel)
    for _, t in ipairs(trees) do
        for _, c in ipairs(t.channels or {}) do
            if c == channel then return t end
        end
    end
end

local function match(api, trees, rec)
    local by_id = {}
    for _, t in ipairs(trees) do by_id[t.id] = t end
    if api.same_store and by_id[rec.id] then return by_id[rec.id] end
    local mapped = api.map("category_trees", rec.id)
    if mapped and by_id[mapped] then return by_id[mapped] end
    for _, t in ipairs(trees) do
        if t.name == rec.name then return t end
    end
    if api.same_store and first_channel(rec) then return holder_of(trees, first_channel(rec)) end
end

-- Decides each tree's fate; returns the upsert items and, beside them, the records they are for.
local function plan(api, batch, trees)
    local items, owners, channels = {}, {}, nil
    for _, item in ipairs(batch) do
        local rec = item.rec
        local live = match(api, trees, rec)
        if live then
            api.remember("category_trees", rec.id, live.id)
            if live.name == rec.name then
                api.report(rec.id, "unchanged")
            elseif api.dry_run then
                api.report(rec.id, "updated", "", { "name" })
            else
                items[#items + 1] = { id = live.id, name = rec.name }
                owners[#owners + 1] = { rec = rec, outcome = "updated", fields = { "name" } }
            end
        else
            local old = first_channel(rec)
            local ch = target_channel(api, old)
            channels = channels or channel_ids(api)
            local holder = ch and holder_of(trees, ch)
            if old == nil then
                api.report(rec.id, "skipped", "the tree names no channel")
            elseif ch == nil or not channels[ch] then
                api.report(rec.id, "skipped", ("channel %s does not exist in store %s (no " ..
                    "channel of that name), and a tree belongs to exactly one channel"):format(
                    tostring(old), api.target_store))
            elseif holder then
                api.report(rec.id, "skipped", ("channel %s already has tree %d (%s), and a " ..
                    "channel has one tree"):format(tostring(ch), holder.id, holder.name))
            elseif api.dry_run then
                api.report(rec.id, "created")
            else
                items[#items + 1] = { name = rec.name, channels = api.json.array({ ch }) }
                owners[#owners + 1] = { rec = rec, outcome = "created" }
            end
        end
    end
    return items, owners
end

local function write(api, batch)
    local trees = live_trees(api)
    local items, owners = plan(api, batch, trees)
    if #items == 0 then return end
    local status, body = api.put(TREES, api.json.array(items))
    if status < 200 or status >= 300 then
        local why = R.message(api, status, body)
        for _, o in ipairs(owners) do api.report(o.rec.id, "failed", why) end
        return
    end
    local data = R.data(api, body) or {}
    for i, o in ipairs(owners) do
        local got = data[i]
        if got and got.id then api.remember("category_trees", o.rec.id, got.id) end
        api.report(o.rec.id, o.outcome, "", o.fields)
    end
end

return {
    contract = 1,
    type = "category_trees",
    version = "1.1.0",
    scope = "store_v2_products_read_only",
    depends = { "channels" },
    natural_key = { "name" },
    list = {
        api = "v3",
        path = "/catalog/trees",
        paging = "page",
        limit = 250,
    },
    restore = {
        batch = 50,
        parallel = 1,
        needs = { channels = "channels" },
        write = write,
    },
}
