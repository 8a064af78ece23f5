-- channels: the store's channels (storefronts, marketplaces, POS), from the v3 list 250 at a
-- time: one request for nearly every store. They are backed up for their names: channel ids
-- differ between stores, and what hangs from a channel (category trees, pages, customers,
-- orders) must point at the target's channel of the same name.
--
-- Restore only maps, and never creates or changes a channel (a channel is a sales outlet the
-- merchant sets up, often with an outside platform). One read of the target's channels per
-- batch; each backed-up channel is matched by its own id in the same store, else by name,
-- type and platform, and remembered in the id map. One the target lacks is skipped with
-- the reason, and the records on it report the reference they could not map.
local R = require("_restore")

local function same_kind(a, b)
    return a.name == b.name and a.type == b.type and a.platform == b.platform
end

local function match(api, live, rec)
    if api.same_store then
        for _, c in ipairs(live) do
            if tonumber(c.id) == tonumber(rec.id) then return c end
        end
    end
    for _, c in ipairs(live) do
        if same_kind(c, rec) then return c end
    end
end

local function write(api, batch)
    local live = R.all(api, "/v3/channels")
    for _, item in ipairs(batch) do
        local c = match(api, live, item.rec)
        if c then
            api.remember("channels", item.id, c.id)
            local note = ""
            if tonumber(c.id) ~= tonumber(item.id) then
                note = ("the target's channel %s"):format(tostring(c.id))
            end
            api.report(item.id, "unchanged", note)
        else
            api.report(item.id, "skipped", ("no channel of that name in the target (%s, %s/%s);"
                .. " channels are never created"):format(tostring(item.rec.name),
                tostring(item.rec.type), tostring(item.rec.platform)))
        end
    end
end

return {
    contract = 1,
    type = "channels",
    version = "1.0.0",
    scope = "store_channel_settings_read_only",
    natural_key = { "name", "type", "platform" },
    list = {
        api = "v3",
        path = "/channels",
        paging = "page",
        limit = 250,
    },
    restore = {
        batch = 250,
        parallel = 1,
        write = write,
    },
}
