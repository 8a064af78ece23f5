-- redirects: storefront redirects of every site, from the v3 list 250 at a time
-- (1/250 request per redirect). include=to_url adds the resolved target URL, which
-- a restore cannot rebuild without the target record; it costs no extra call. The
-- API documents no id range filter here, so they page by number; sort=id keeps new
-- redirects at the end, where the total check on the last page sees them.
-- to.entity_id points at a product, brand, category, page or post, hence depends.
--
-- Restore: the API upserts by (site_id, from_path), 100 a call. Each batch
-- reads the target's redirects once (250 a call, no filter fits the key),
-- matches by id (same store), the id map, then (site_id, from_path), and
-- sends one PUT with the new and changed ones. to.entity_id goes through the
-- id map of its type; a redirect whose target is not in the store is skipped.
local R = require("_restore")

local PATH = "/v3/storefront/redirects"
local TARGET_TYPES = { product = "products", brand = "brands", category = "categories",
    page = "pages", post = "blog_posts" }

local function key_of(r) return tostring(r.site_id) .. "|" .. tostring(r.from_path) end

-- The site: the id map, else (another store) the target's default site.
local function site_of(api, site, cache, notes)
    if api.same_store then return site end
    local m = api.map("sites", site)
    if m ~= nil then return m end
    if cache.default == nil then
        local status, body = api.get("/v2/store")
        if status ~= 200 then error("reading the store's default site: "
            .. R.message(api, status, body), 0) end
        cache.default = api.json.decode(body).default_site_id or site
    end
    if tonumber(cache.default) ~= tonumber(site) then
        notes[#notes + 1] = ("site %s mapped to the target store's default site %s")
            :format(tostring(site), tostring(cache.default))
    end
    return cache.default
end

-- The body to send, or nil and why it cannot be written.
local function shape(api, rec, cache)
    local notes = {}
    local body = { from_path = rec.from_path, site_id = site_of(api, rec.site_id, cache, notes),
        to = R.copy(rec.to) }
    local kind = type(body.to) == "table" and TARGET_TYPES[body.to.type]
    if kind and body.to.entity_id ~= nil then
        local m = api.map(kind, body.to.entity_id)
        if m == nil and api.same_store then m = body.to.entity_id end
        if m == nil then
            return nil, ("its target, %s %s, is not in the target store (restore %s first)")
                :format(body.to.type, tostring(body.to.entity_id), kind)
        end
        body.to.entity_id = m
    end
    return body, table.concat(notes, "; ")
end

-- v3 batch errors: {INDEX: message} in a 207's errors[] or an all-failed body.
local function item_errors(api, body)
    local out = {}
    local ok, doc = pcall(api.json.decode, body or "")
    if not ok or type(doc) ~= "table" then return out end
    local function take(errs)
        if type(errs) ~= "table" then return end
        for k, v in pairs(errs) do
            local i = tonumber(tostring(k):match("^(%d+)"))
            if i then out[i + 1] = tostring(v) end
        end
    end
    if type(doc.errors) == "table" and doc.errors[1] ~= nil then
        for _, e in ipairs(doc.errors) do take(e.errors) end
    else
        take(doc.errors)
    end
    return out
end

local function send(api, writes)
    if #writes == 0 then return end
    local bodies = {}
    for i, w in ipairs(writes) do bodies[i] = w.body end
    local status, answer = api.put(PATH, api.json.array(bodies))
    local failed = (status == 200 or status == 201) and {} or item_errors(api, answer)
    local saved = {}
    if status == 200 or status == 201 or status == 207 then
        for _, r in ipairs(R.data(api, answer) or {}) do saved[key_of(r)] = r end
    end
    for i, w in ipairs(writes) do
        local r = saved[key_of(w.body)]
        if r ~= nil then
            api.remember("redirects", w.id, r.id)
            api.report(w.id, w.outcome, w.note, w.fields)
        elseif failed[i] then
            api.report(w.id, "failed", ("HTTP %d: %s"):format(status, failed[i]))
        else
            api.report(w.id, "failed", R.message(api, status, answer))
        end
    end
end

local function write(api, batch)
    local by_id, by_key = {}, {}
    for _, r in ipairs(R.all(api, PATH, { sort = "id" })) do
        by_id[tonumber(r.id)] = r
        by_key[key_of(r)] = r
    end
    local cache, writes = {}, {}
    for _, item in ipairs(batch) do
        local id = item.id
        local body, note = shape(api, item.rec, cache)
        if body == nil then
            api.report(id, "skipped", note)
        else
            local live = api.same_store and by_id[tonumber(id)] or nil
            local mapped = api.map("redirects", id)
            if live == nil and mapped ~= nil then live = by_id[tonumber(mapped)] end
            -- a live record under another key is not the one the upsert writes
            if live ~= nil and key_of(live) ~= key_of(body) then live = nil end
            live = live or by_key[key_of(body)]
            local fields = live and R.differs(live, body) or {}
            if live ~= nil then api.remember("redirects", id, live.id) end
            if live ~= nil and #fields == 0 then
                api.report(id, "unchanged", note)
            elseif api.dry_run then
                api.report(id, live and "updated" or "created", note, live and fields or nil)
            else
                writes[#writes + 1] = { id = id, body = body, note = note,
                    outcome = live and "updated" or "created", fields = fields }
            end
        end
    end
    send(api, writes)
end

return {
    contract = 1,
    type = "redirects",
    version = "1.0.0",
    scope = "store_v2_content_read_only",
    depends = { "products", "brands", "categories", "pages", "blog_posts" },
    natural_key = { "site_id", "from_path" },
    list = {
        api = "v3",
        path = "/storefront/redirects",
        paging = "page",
        limit = 250,
        query = { include = "to_url", sort = "id" },
    },
    restore = {
        batch = 100,
        -- upserts of one batch must not race another's lookups
        parallel = 1,
        write = write,
    },
}
