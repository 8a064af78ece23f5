-- host.lua: the plugin host's Lua half. It builds each plugin's sandbox,
-- loads plugin files, and checks a plugin's description against the
-- contract, so that C receives only well-formed descriptions.
--
-- The C half (core/plugin.c) calls exactly these functions:
--   host.load(dir, relpath, source, api)  -> description | nil, err
--   host.children(description, raw_record) -> list of child specs
--   host.start_fetch(description, api)   -> coroutine
-- and gives `api`, a table of functions implemented in C (log, request).

local host = {}

host.CONTRACT = 1

local cjson = require("cjson")
cjson.decode_max_depth(1000)
cjson.decode_invalid_numbers(false)

-- The globals a plugin sees. No io, os.execute, load*, dofile, debug or
-- raw access to other plugins' state.
local function copy(t, skip)
    local c = {}
    for k, v in pairs(t) do
        if not (skip and skip[k]) then c[k] = v end
    end
    return c
end

local safe_string = copy(string, { dump = true })
local safe_os = { time = os.time, clock = os.clock, date = os.date, difftime = os.difftime }

local function safe_getmetatable(v)
    if type(v) == "string" then return nil end
    return getmetatable(v)
end

local function new_env(dir, api, modules)
    -- Each plugin gets its own cjson instance: one plugin changing it
    -- (cjson.decode = ...) cannot change what another one reads.
    local own_cjson = cjson.new()
    own_cjson.decode_max_depth(1000)
    local env = {
        assert = assert, error = error, ipairs = ipairs, next = next, pairs = pairs,
        pcall = pcall, select = select, tonumber = tonumber, tostring = tostring,
        type = type, unpack = unpack, xpcall = xpcall, rawequal = rawequal,
        rawget = rawget, rawset = rawset, setmetatable = setmetatable,
        getmetatable = safe_getmetatable,
        string = copy(safe_string), table = copy(table), math = copy(math),
        os = copy(safe_os), coroutine = copy(coroutine),
        cjson = own_cjson,
        o7 = api,
    }
    env._G = env
    -- require: only cjson and modules that live under plugins/.
    env.require = function(name)
        if name == "cjson" then return own_cjson end
        if type(name) ~= "string" or not name:match("^[%w_]+[%w_%.]*$") then
            error("require: bad module name " .. tostring(name), 2)
        end
        if modules[name] ~= nil then return modules[name] end
        local rel = name:gsub("%.", "/") .. ".lua"
        local src = api.read_plugin_file(rel)
        if not src then error("require: no module " .. name .. " under plugins/", 2) end
        local chunk, err = loadstring(src, "@" .. dir .. "/" .. rel)
        if not chunk then error(err, 2) end
        setfenv(chunk, env)
        local m = chunk()
        modules[name] = (m == nil) and true or m
        return modules[name]
    end
    return env
end

local function check_string(t, k, where, optional)
    local v = t[k]
    if v == nil and optional then return nil end
    if type(v) ~= "string" or v == "" then
        error(where .. "." .. k .. " must be a non-empty string", 0)
    end
    return v
end

local PAGING = { keyset = true, page = true, cursor = true }
local APIS = { v2 = true, v3 = true }

local function check_query(q, where)
    if q == nil then return {} end
    if type(q) ~= "table" then error(where .. " must be a table of name = value", 0) end
    local out = {}
    for k, v in pairs(q) do
        if type(k) ~= "string" or (type(v) ~= "string" and type(v) ~= "number") then
            error(where .. ": every entry is name = string or number", 0)
        end
        out[#out + 1] = { k, tostring(v) }
    end
    table.sort(out, function(a, b) return a[1] < b[1] end)
    return out
end

-- Checks a plugin's table and returns the description C reads.
local function describe(p, file)
    if type(p) ~= "table" then error("the plugin must return a table", 0) end
    if p.contract ~= host.CONTRACT then
        error(("contract %s is not one this o7 supports (it supports %d)")
            :format(tostring(p.contract), host.CONTRACT), 0)
    end
    local d = {
        type = check_string(p, "type", "plugin"),
        version = check_string(p, "version", "plugin"),
        scope = check_string(p, "scope", "plugin"),
        file = file,
        depends = p.depends or {},
        natural_key = p.natural_key or {},
        plugin = p,
    }
    if not d.type:match("^[a-z][a-z0-9_]*$") then
        error("plugin.type must be lower-case letters, digits and _", 0)
    end
    if not d.version:match("^%d+%.%d+%.%d+$") then
        error("plugin.version must look like 1.2.3", 0)
    end
    for _, dep in ipairs(d.depends) do
        if type(dep) ~= "string" then error("plugin.depends lists type names", 0) end
    end
    if p.list == nil and p.fetch == nil then
        error("plugin needs a list description or a fetch hook", 0)
    end
    if p.list ~= nil then
        local l = p.list
        if type(l) ~= "table" then error("plugin.list must be a table", 0) end
        local api = check_string(l, "api", "list")
        if not APIS[api] then error("list.api must be v2 or v3", 0) end
        local paging = check_string(l, "paging", "list")
        if not PAGING[paging] then error("list.paging must be keyset, page or cursor", 0) end
        if paging == "cursor" and api ~= "v3" then error("cursor paging is a v3 feature", 0) end
        local limit = l.limit or 250
        if type(limit) ~= "number" or limit < 1 or limit > 250 or limit % 1 ~= 0 then
            error("list.limit must be a whole number from 1 to 250", 0)
        end
        d.list = {
            api = api, path = check_string(l, "path", "list"), paging = paging,
            limit = limit, key = l.key or "id", query = check_query(l.query, "list.query"),
            count_path = check_string(l, "count_path", "list", true),
        }
        if paging == "keyset" then
            local k = l.keyset
            if type(k) ~= "table" then error("keyset paging needs list.keyset", 0) end
            d.list.after = check_string(k, "after", "list.keyset", true)
            d.list.from = check_string(k, "from", "list.keyset", true)
            if (d.list.after == nil) == (d.list.from == nil) then
                error("list.keyset needs exactly one of after (exclusive) or from (inclusive)", 0)
            end
            d.list.upto = check_string(k, "upto", "list.keyset")
            d.list.newest = check_query(k.newest, "list.keyset.newest")
            if #d.list.newest == 0 then error("list.keyset.newest must say how to sort newest first", 0) end
        end
    end
    if p.children ~= nil and type(p.children) ~= "function" then
        error("plugin.children must be a function", 0)
    end
    if p.fetch ~= nil and type(p.fetch) ~= "function" then
        error("plugin.fetch must be a function", 0)
    end
    if p.restore ~= nil then
        local r = p.restore
        if type(r) ~= "table" or type(r.write) ~= "function" then
            error("plugin.restore must be a table with a write(api, batch) function", 0)
        end
        local batch, parallel = r.batch or 1, r.parallel or 4
        if type(batch) ~= "number" or batch < 1 or batch > 1000 or batch % 1 ~= 0 then
            error("restore.batch must be a whole number from 1 to 1000", 0)
        end
        if type(parallel) ~= "number" or parallel < 1 or parallel > 16 or parallel % 1 ~= 0 then
            error("restore.parallel must be a whole number from 1 to 16", 0)
        end
        if r.parent ~= nil and type(r.parent) ~= "string" then
            error("restore.parent must name a member", 0)
        end
        d.has_restore = true
        d.restore_batch = batch
        -- Parents must exist before their children, so such types go one
        -- batch at a time, in the order the core sorts them.
        d.restore_parallel = r.parent and 1 or parallel
        d.restore_parent = r.parent
        -- needs: member -> type, the references a record cannot do without
        -- ("a.b" reads b in each element of a); --only brings the missing
        -- ones along.
        local needs = {}
        for member, kind in pairs(r.needs or {}) do
            if type(member) ~= "string" or type(kind) ~= "string" then
                error("restore.needs maps member names to type names", 0)
            end
            needs[#needs + 1] = { member, kind }
        end
        table.sort(needs, function(a, b) return a[1] < b[1] end)
        d.restore_needs = needs
    end
    d.has_children = p.children ~= nil
    d.has_fetch = p.fetch ~= nil
    return d
end

function host.load(dir, relpath, source, api)
    local modules = {}
    local env = new_env(dir, api, modules)
    local chunk, err = loadstring(source, "@" .. dir .. "/" .. relpath)
    if not chunk then return nil, err end
    setfenv(chunk, env)
    local ok, p = pcall(chunk)
    if not ok then return nil, tostring(p) end
    local ok2, d = pcall(describe, p, dir .. "/" .. relpath)
    if not ok2 then return nil, dir .. "/" .. relpath .. ": " .. tostring(d) end
    return d
end

-- Child calls for one record. Each spec: { member, path, api, limit, query }
-- or { member, empty = true } when the record shows there is nothing to
-- fetch: the member is then set to [] without a call, so every record has
-- the same shape. Returns a list of normalised specs (possibly empty).
function host.children(d, raw)
    local rec = cjson.decode(raw)
    local specs = d.plugin.children(rec) or {}
    local out = {}
    for i, s in ipairs(specs) do
        if type(s) ~= "table" or type(s.member) ~= "string" or
            (type(s.path) ~= "string" and s.empty ~= true) then
            error(("children()[%d] needs member and path strings (or empty = true)"):format(i), 0)
        end
        local api = s.api or (d.list and d.list.api) or "v3"
        if not APIS[api] then error(("children()[%d].api must be v2 or v3"):format(i), 0) end
        out[#out + 1] = {
            member = s.member, path = s.path or "", api = api, limit = s.limit or 250,
            empty = s.empty == true,
            query = check_query(s.query, ("children()[%d].query"):format(i)),
        }
    end
    return out
end

-- The fetch hook runs as a coroutine. Every call of its `api` that needs
-- the core yields ("op", args...) to C, which acts and resumes the
-- coroutine with the answer:
--   get(path, query)    -> status, body       (the store's API)
--   post(path, body)    -> status, body
--   sleep(ms)           -> nothing
--   emit(raw_json)      -> true               (one record, bytes kept)
--   attach(name, url)   -> object | nil, err  (a download link the API gave)
-- and, without yielding: log(level, msg), records(body) -> raw record
-- strings of a page, json (cjson, for reading).
local function fetch_api(o7)
    local y = coroutine.yield
    return {
        get = function(path, query) return y("get", path, query) end,
        post = function(path, body) return y("post", path, body) end,
        sleep = function(ms) return y("sleep", ms) end,
        emit = function(raw) return y("emit", raw) end,
        attach = function(name, url) return y("attach", name, url) end,
        log = o7.log,
        records = o7.records,
        json = cjson,
    }
end

-- The restore hook: restore.write(api, batch) runs as a coroutine on a
-- batch of records { raw = text, rec = decoded (o7.json), id = key }. Its
-- api adds to the fetch api:
--   put(path, body), delete(path, query) -> status, body
--   map(type, old_id) -> the id in the target store, or nil
--   remember(type, old_id, new_id)
--   report(old_id, outcome, detail, fields) -- created, updated,
--       unchanged, skipped, kept or failed; every record needs one
-- and dry_run, same_store, activate, source_store, target_store. In a dry
-- run, post, put and delete raise an error: nothing can be written.
local function restore_api(o7, ctx)
    local y = coroutine.yield
    local function text(body)
        if type(body) == "table" then return o7.json.encode(body) end
        return body
    end
    local function write(op)
        return function(path, body)
            if ctx.dry_run then error("a write was attempted during a dry run", 2) end
            if op == "delete" then return y("delete", path, body) end
            return y(op, path, text(body))
        end
    end
    return {
        get = function(path, query) return y("get", path, query) end,
        post = write("post"), put = write("put"), delete = write("delete"),
        sleep = function(ms) return y("sleep", ms) end,
        map = function(kind, old)
            local v = y("map", kind, tostring(old))
            return v and (tonumber(v) or v)
        end,
        remember = function(kind, old, new)
            return y("remember", kind, tostring(old), tostring(new))
        end,
        report = function(old, outcome, detail, fields)
            return y("report", tostring(old), outcome, detail or "",
                fields and table.concat(fields, ",") or "")
        end,
        upload = function(path, field, object)
            if ctx.dry_run then error("a write was attempted during a dry run", 2) end
            return y("upload", path, field, object)
        end,
        log = o7.log, json = o7.json,
        dry_run = ctx.dry_run, same_store = ctx.same_store, activate = ctx.activate,
        source_store = ctx.source_store, target_store = ctx.target_store,
        backup_id = ctx.backup_id,
    }
end

function host.start_restore(d, o7, raws, ctx)
    -- Restore hooks run with the JIT compiler off. With it on, a catalog restore against
    -- the fake store died with SIGSEGV inside compiled code about once in 7 runs (several
    -- restore coroutines in flight); with it off, never in 60. Restores wait on the network,
    -- so the compiler buys them nothing. The cause is not found yet.
    if jit then jit.off() end
    local key = d.list and d.list.key or "id"
    local batch = {}
    for i, raw in ipairs(raws) do
        local rec = o7.json.decode(raw)
        batch[i] = { raw = raw, rec = rec, id = rec[key] }
    end
    local api = restore_api(o7, ctx)
    return coroutine.create(function() return d.plugin.restore.write(api, batch) end)
end

function host.start_fetch(d, o7)
    local api = fetch_api(o7)
    return coroutine.create(function() return d.plugin.fetch(api) end)
end

return host
