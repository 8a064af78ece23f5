-- categories: every category of every tree, from the flat tree-categories
-- list (250 a page). The nested per-tree endpoint allows one request at a
-- time per store and returns a whole tree in one body; the flat list pages,
-- keeps each category as its own record, and carries parent_id and tree_id
-- for the restore order (parents before children).
--
-- Restore: the driver hands over batches of 50, parents first. A batch goes depth by depth
-- (a child may need a parent created in the same batch): per depth, one read of the records
-- found by own id (same store) or the id map, one read of the children of the parents that
-- the rest hang under (to match by name under the same parent in the same tree), then one
-- POST for all creates and one PUT for all updates. 207 answers are read item by item; an
-- item refused with 409 is looked up by name under its parent and updated instead.
local R = require("_restore")

local CATS = "/v3/catalog/trees/categories"

-- In a dry run nothing is created, so a child of a category that would be created cannot be
-- matched: it would be created too. Keyed by run, kept only for dry runs.
local would_create = {}

local function planned(api)
    local k = api.backup_id .. ">" .. api.target_store
    would_create[k] = would_create[k] or {}
    return would_create[k]
end

-- Never sent: the id and the server's uuid.
local STRIP = { "category_id", "category_uuid" }

local function csv(list)
    local parts = {}
    for i, v in ipairs(list) do parts[i] = tostring(v) end
    return table.concat(parts, ",")
end

-- Every category a filter finds, all pages.
local function list(api, query)
    local out, page = {}, 1
    repeat
        query.limit, query.page = 250, page
        local status, body = api.get(CATS, query)
        if status ~= 200 then
            error("reading the target's categories: " .. R.message(api, status, body), 0)
        end
        local doc = api.json.decode(body)
        for _, c in ipairs(doc.data or {}) do out[#out + 1] = c end
        local p = doc.meta and doc.meta.pagination or {}
        page = page + 1
    until (p.total_pages or 1) < page
    return out
end

local function key(tree, parent, name)
    return tostring(tree) .. "/" .. tostring(parent) .. "/" .. tostring(name)
end

-- The body for a record: stripped, tree and parent remapped; nil and a reason to skip.
local function body_of(api, rec)
    local body = R.strip(rec, STRIP)
    local tree = api.map("category_trees", rec.tree_id)
    if tree == nil and api.same_store then tree = rec.tree_id end
    if tree == nil then
        return nil, ("its tree %s was not restored into store %s")
            :format(tostring(rec.tree_id), api.target_store)
    end
    body.tree_id = tree
    if rec.parent_id and rec.parent_id ~= 0 then
        local parent = api.map("categories", rec.parent_id)
        if parent == nil and api.same_store then parent = rec.parent_id end
        if parent == nil then
            return nil, ("its parent category %s is not in store %s")
                :format(tostring(rec.parent_id), api.target_store)
        end
        body.parent_id = parent
    end
    return body
end

-- Live records for the given items: by own id or mapped id, then by name under the parent.
local function find_live(api, todo)
    local ids, want = {}, {}
    for _, t in ipairs(todo) do
        local id = api.same_store and t.rec.category_id or nil
        local mapped = api.map("categories", t.rec.category_id)
        t.ids = { id, mapped }
        for _, x in pairs(t.ids) do
            if not want[x] then want[x], ids[#ids + 1] = true, x end
        end
    end
    local by_id = {}
    if #ids > 0 then
        for _, c in ipairs(list(api, { ["category_id:in"] = csv(ids) })) do
            by_id[c.category_id] = c
        end
    end
    local parents, trees, seen = {}, {}, {}
    for _, t in ipairs(todo) do
        for _, x in pairs(t.ids) do
            if by_id[x] and by_id[x].tree_id == t.body.tree_id then t.live = by_id[x] end
        end
        if t.live == nil then
            local p = t.body.parent_id or 0
            if not seen["p" .. p] then seen["p" .. p], parents[#parents + 1] = true, p end
            if not seen["t" .. t.body.tree_id] then
                seen["t" .. t.body.tree_id], trees[#trees + 1] = true, t.body.tree_id
            end
        end
    end
    if #parents > 0 then
        local by_key = {}
        local query = { ["parent_id:in"] = csv(parents), ["tree_id:in"] = csv(trees) }
        for _, c in ipairs(list(api, query)) do
            by_key[key(c.tree_id, c.parent_id, c.name)] = c
        end
        for _, t in ipairs(todo) do
            if t.live == nil then
                t.live = by_key[key(t.body.tree_id, t.body.parent_id or 0, t.body.name)]
            end
        end
    end
end

-- Index -> message of a 201/207/4xx batch answer's failed items.
local function item_errors(api, status, body)
    local out = {}
    local ok, doc = pcall(api.json.decode, body or "")
    if not ok or type(doc) ~= "table" then return out end
    local groups = doc.errors
    if type(groups) == "table" and groups.status == nil and groups[1] == nil then
        groups = { { status = status, title = doc.title, errors = groups } }
    end
    if type(groups) ~= "table" then return out end
    for _, g in ipairs(groups) do
        for k, v in pairs(type(g.errors) == "table" and g.errors or {}) do
            local idx = tonumber(tostring(k):match("^(%d+)"))
            if idx then
                out[idx] = { status = g.status or status,
                             text = ("HTTP %s: %s"):format(tostring(g.status or status),
                                 tostring(v)) }
            end
        end
    end
    return out
end

-- Sends items (POST or PUT) and reports each; 409s on create go to retry.
local function send(api, method, items, retry)
    if #items == 0 then return end
    local bodies = {}
    for i, t in ipairs(items) do bodies[i] = t.send end
    local status, body = api[method](CATS, api.json.array(bodies))
    local errs = item_errors(api, status, body)
    local ok = status >= 200 and status < 300
    local data = ok and R.data(api, body) or {}
    local by_key = {}
    for _, c in ipairs(type(data) == "table" and data or {}) do
        by_key[key(c.tree_id, c.parent_id, c.name)] = c
    end
    for i, t in ipairs(items) do
        local e = errs[i - 1]
        local got = by_key[key(t.body.tree_id, t.body.parent_id or 0, t.body.name)]
        if e == nil and got then
            api.remember("categories", t.rec.category_id, got.category_id)
            api.report(t.rec.category_id, t.outcome, "", t.fields)
        elseif e and e.status == 409 and retry then
            retry[#retry + 1] = t
        else
            api.report(t.rec.category_id, "failed",
                e and e.text or R.message(api, status, body))
        end
    end
end

-- Matches, compares and writes one depth of the batch.
local function one_depth(api, todo, second)
    find_live(api, todo)
    local posts, puts = {}, {}
    for _, t in ipairs(todo) do
        local id = t.rec.category_id
        if t.live then
            api.remember("categories", id, t.live.category_id)
            local fields = R.differs(t.live, t.body)
            if #fields == 0 then
                api.report(id, "unchanged")
            elseif api.dry_run then
                api.report(id, "updated", "", fields)
            else
                local s = { category_id = t.live.category_id }
                for _, f in ipairs(fields) do s[f] = t.body[f] end
                t.send, t.outcome, t.fields = s, "updated", fields
                puts[#puts + 1] = t
            end
        elseif second then
            api.report(id, "failed", "the store refused it as a duplicate (409), yet no " ..
                "category of that name is under its parent")
        elseif api.dry_run then
            planned(api)[id] = true
            api.report(id, "created")
        else
            t.send, t.outcome = t.body, "created"
            posts[#posts + 1] = t
        end
    end
    local retry = {}
    send(api, "post", posts, retry)
    send(api, "put", puts)
    if #retry > 0 then
        for _, t in ipairs(retry) do t.live = nil end
        one_depth(api, retry, true)
    end
end

local function write(api, batch)
    -- Depth within the batch: a parent in the batch comes first (the driver's order).
    local depth_of, levels, maxd = {}, {}, 0
    for _, item in ipairs(batch) do
        local rec = item.rec
        local d = (depth_of[rec.parent_id] or -1) + 1
        depth_of[rec.category_id] = d
        if d > maxd then maxd = d end
        levels[d] = levels[d] or {}
        levels[d][#levels[d] + 1] = item
    end
    for d = 0, maxd do
        local todo = {}
        for _, item in ipairs(levels[d] or {}) do
            local body, why = body_of(api, item.rec)
            if api.dry_run and planned(api)[item.rec.parent_id] then
                planned(api)[item.rec.category_id] = true
                api.report(item.rec.category_id, "created", "its parent would be created too")
            elseif body == nil then
                api.report(item.rec.category_id, "skipped", why)
            else
                todo[#todo + 1] = { rec = item.rec, body = body }
            end
        end
        if #todo > 0 then one_depth(api, todo) end
    end
end

return {
    contract = 1,
    type = "categories",
    version = "1.1.0",
    scope = "store_v2_products_read_only",
    depends = { "category_trees" },
    natural_key = { "tree_id", "parent_id", "name" },
    list = {
        api = "v3",
        path = "/catalog/trees/categories",
        paging = "page",
        limit = 250,
        key = "category_id",
    },
    restore = {
        batch = 50,
        parent = "parent_id",
        needs = { parent_id = "categories", tree_id = "category_trees" },
        write = write,
    },
}
