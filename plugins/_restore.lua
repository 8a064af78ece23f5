-- _restore.lua: what restore hooks share. A plugin's restore.write(api,
-- batch) uses these to turn a backed-up record into a write, find the live
-- record it matches, and report one outcome per record.
--
--   local R = require("_restore")
--   restore = R.one_by_one { ... }   -- for APIs that write one record a call
--
-- Records arrive decoded by o7.json (arrays stay arrays, null is
-- api.json.null); bodies are encoded the same way.

local R = {}

local function is_table(v) return type(v) == "table" end

-- A deep copy that keeps the array/object marks.
function R.copy(v)
    if not is_table(v) then return v end
    local c = {}
    for k, x in pairs(v) do c[k] = R.copy(x) end
    return setmetatable(c, getmetatable(v))
end

-- A copy of rec without the named members (read-only, server-set fields).
function R.strip(rec, fields)
    local body = R.copy(rec)
    for _, f in ipairs(fields or {}) do body[f] = nil end
    return body
end

-- Deep equality: numbers as numbers, so 10 equals 10.0; arrays in order.
function R.equal(a, b)
    if type(a) ~= type(b) then
        -- "10.0000" from v2 against 10 from a write: compare as numbers.
        local na, nb = tonumber(a), tonumber(b)
        return na ~= nil and na == nb
    end
    if not is_table(a) then
        if type(a) == "number" then return math.abs(a - b) < 1e-9 end
        return a == b
    end
    for k, v in pairs(a) do
        if not R.equal(v, b[k]) then return false end
    end
    for k in pairs(b) do
        if a[k] == nil then return false end
    end
    return true
end

-- The members of body whose values differ from the live record, sorted.
function R.differs(live, body, ignore)
    local skip = {}
    for _, f in ipairs(ignore or {}) do skip[f] = true end
    local out = {}
    for k, v in pairs(body) do
        if not skip[k] and not R.equal(v, live[k]) then out[#out + 1] = k end
    end
    table.sort(out)
    return out
end

-- The API's own words from an error answer (v3 title and errors, or v2
-- [{status, message}]).
function R.message(api, status, body)
    local ok, doc = pcall(api.json.decode, body or "")
    if not ok or not is_table(doc) then
        return ("HTTP %d"):format(status)
    end
    if doc[1] and is_table(doc[1]) and doc[1].message then
        return ("HTTP %d: %s"):format(status, tostring(doc[1].message))
    end
    local parts = {}
    if is_table(doc.errors) then
        for k, v in pairs(doc.errors) do
            if type(v) == "string" then parts[#parts + 1] = k .. ": " .. v end
        end
        table.sort(parts)
    end
    local title = doc.title or doc.message or ""
    if #parts > 0 then title = title .. " (" .. table.concat(parts, "; ") .. ")" end
    return ("HTTP %d: %s"):format(status, title)
end

-- The record of a v3 {data: ...} answer, or a v2 bare answer.
function R.data(api, body)
    local doc = api.json.decode(body)
    if is_table(doc) and doc.data ~= nil then return doc.data end
    return doc
end

-- The first record a list query finds, or nil.
function R.find(api, path, query)
    local status, body = api.get(path, query)
    if status == 204 or status == 404 then return nil end
    if status ~= 200 then
        error(("looking up %s: %s"):format(path, R.message(api, status, body)), 0)
    end
    local list = R.data(api, body)
    if is_table(list) and list[1] ~= nil then return list[1] end
    return nil
end

-- Every record of a v3 collection, page by page (for collections with no
-- filter on their natural key: read once per batch, then matched locally).
function R.all(api, path, query)
    local out, page = {}, 1
    while true do
        local q = R.copy(query or {})
        q.page, q.limit = page, 250
        local status, body = api.get(path, q)
        if status == 204 then return out end
        if status ~= 200 then
            error(("listing %s: %s"):format(path, R.message(api, status, body)), 0)
        end
        local doc = api.json.decode(body)
        for _, r in ipairs(doc.data or {}) do out[#out + 1] = r end
        local p = doc.meta and doc.meta.pagination
        if not p or not p.total_pages or page >= p.total_pages then return out end
        page = page + 1
    end
end

-- One record by its id, or nil when the store has no such record.
function R.get(api, item_path, id)
    local status, body = api.get(item_path:format(id))
    if status == 404 or status == 204 then return nil end
    if status ~= 200 then
        error(("reading %s: %s"):format(item_path:format(id), R.message(api, status, body)), 0)
    end
    return R.data(api, body)
end

-- Rewrites reference members through the id map. refs maps a member to
-- the type it points at; a list member is mapped element by element.
-- Returns the references that could not be mapped (as "member id").
function R.remap(api, body, refs)
    local missing = {}
    local function one(kind, id)
        if id == nil or id == api.json.null or id == 0 then return id end
        local new = api.map(kind, id)
        if new ~= nil then return new end
        if api.same_store then return id end
        missing[#missing + 1] = kind .. " " .. tostring(id)
        return nil
    end
    for member, kind in pairs(refs or {}) do
        local v = body[member]
        if is_table(v) then
            local out = {}
            for _, id in ipairs(v) do
                local new = one(kind, id)
                if new ~= nil then out[#out + 1] = new end
            end
            body[member] = api.json.array(out)
        elseif v ~= nil then
            body[member] = one(kind, v)
        end
    end
    return missing
end

-- A restore for APIs that create and update one record per call.
--   type       the type name (for the id map)
--   path       the collection ("/v3/catalog/brands"): POST creates
--   item       the record's path with %s for its id: GET reads, PUT updates
--   key        the record's id member (default "id")
--   strip      members never sent (read-only, server-set)
--   refs       reference members and the types they point at
--   lookup     function(api, body) -> live record by natural key, or nil
--   prepare    function(api, body, rec) -> body (and, third, a list of
--              nested references it could not map), or nil and a skip reason
--   ignore     members not compared when deciding "unchanged"
--   keep_existing  true: a record found live is never changed (reported
--              "kept" when it differs), as for orders
--   view       function(api, live) -> live as the backup would hold it, for
--              APIs that read a member in another form than they take it
function R.one_by_one(spec)
    local key = spec.key or "id"
    local function live_of(api, id, body)
        local live
        if api.same_store then live = R.get(api, spec.item, id) end
        if live == nil then
            local mapped = api.map(spec.type, id)
            if mapped ~= nil then live = R.get(api, spec.item, mapped) end
        end
        if live == nil and spec.lookup then live = spec.lookup(api, body) end
        if live ~= nil and spec.view then live = spec.view(api, live) end
        return live
    end
    local function write_one(api, item)
        local rec, id = item.rec, item.id
        local body = R.strip(rec, spec.strip)
        local missing = R.remap(api, body, spec.refs)
        if spec.prepare then
            local why, unmapped
            body, why, unmapped = spec.prepare(api, body, rec)
            if body == nil then return api.report(id, "skipped", why) end
            for _, m in ipairs(unmapped or {}) do missing[#missing + 1] = m end
        end
        local note = #missing > 0 and ("references not found in the target store: " ..
            table.concat(missing, ", ")) or ""
        local live = live_of(api, id, body)
        if live ~= nil then
            local fields = R.differs(live, body, spec.ignore)
            api.remember(spec.type, id, live[key])
            if #fields == 0 then return api.report(id, "unchanged", note) end
            if spec.keep_existing then
                return api.report(id, "kept", "differs from the backup in " ..
                    table.concat(fields, ", ") .. "; existing records are never modified", fields)
            end
            if api.dry_run then return api.report(id, "updated", note, fields) end
            local status, answer = api.put(spec.item:format(live[key]), body)
            if status >= 200 and status < 300 then
                return api.report(id, "updated", note, fields)
            end
            return api.report(id, "failed", R.message(api, status, answer))
        end
        if api.dry_run then return api.report(id, "created", note) end
        local status, answer = api.post(spec.path, body)
        if status == 409 and spec.lookup then
            -- Someone holds the natural key: update that record instead.
            live = spec.lookup(api, body)
            if live ~= nil and spec.view then live = spec.view(api, live) end
            if live ~= nil then
                api.remember(spec.type, id, live[key])
                local fields = R.differs(live, body, spec.ignore)
                if #fields == 0 then return api.report(id, "unchanged", note) end
                status, answer = api.put(spec.item:format(live[key]), body)
                if status >= 200 and status < 300 then
                    return api.report(id, "updated", note, fields)
                end
            end
        end
        if status >= 200 and status < 300 then
            local created = R.data(api, answer)
            if is_table(created) and created[1] ~= nil then created = created[1] end
            api.remember(spec.type, id, created[key])
            return api.report(id, "created", note)
        end
        return api.report(id, "failed", R.message(api, status, answer))
    end
    return {
        batch = spec.batch or 1,
        parallel = spec.parallel,
        parent = spec.parent,
        write = function(api, batch)
            for _, item in ipairs(batch) do
                local ok, err = pcall(write_one, api, item)
                if not ok then api.report(item.id, "failed", tostring(err)) end
            end
        end,
    }
end

return R
