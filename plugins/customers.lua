-- customers: with addresses, attribute values, form fields and store
-- credit, all through include= on 250-record cursor pages (the API's
-- preferred paging for customers): 1/250 request per customer, no child
-- calls. Passwords cannot be read through the API, so none are stored.
--
-- Restore: 10 a batch (the API's limit for POST and PUT). A batch costs one
-- email:in lookup (plus an id:in one only for records the email did not
-- settle), one POST for the new customers and one PUT for the changed ones,
-- and for changed ones one call each for missing addresses and attribute
-- values. Recreated customers must reset their password (it cannot be
-- restored) and get no account-created email.
local R = require("_restore")

local INCLUDE = "addresses,storecredit,attributes,formfields"
local BATCH = 10
-- never sent: server-set, or written through their own calls
local STRIP = { "id", "registration_ip_address", "date_created", "date_modified",
    "address_count", "attribute_count", "authentication", "addresses", "attributes",
    "store_credit_amounts" }
-- the fields whose combination makes an address unique (the API drops duplicates)
local ADDRESS_CORE = { "first_name", "last_name", "company", "phone", "address_type",
    "address1", "address2", "city", "country_code", "state_or_province", "postal_code" }
local RESET = "must reset password (passwords cannot be restored)"

local function lower(s) return type(s) == "string" and s:lower() or "" end

local function address_key(a)
    local parts = {}
    for i, f in ipairs(ADDRESS_CORE) do
        local v = a[f]
        if f == "address_type" and (v == nil or v == "") then v = "residential" end
        parts[i] = tostring(v == nil and "" or v)
    end
    return table.concat(parts, "|")
end

local function address_body(api, a, customer_id)
    local b = api.json.object({})
    for _, f in ipairs(ADDRESS_CORE) do
        if a[f] ~= nil then b[f] = a[f] end
    end
    b.form_fields = a.form_fields or api.json.array({})
    b.customer_id = customer_id
    return b
end

-- Ids the target store defines for itself: a customer group, channels. They go through
-- the id map, which the customer_groups and channels restores fill by name. Channel 1 (the
-- default storefront) exists in every store. In another store a group that cannot be
-- mapped becomes 0 (no group) and a channel is dropped; both are named in the detail.
local function target_ids(api, body, notes)
    if api.same_store then return end
    local g = tonumber(body.customer_group_id)
    if g and g ~= 0 then
        local m = api.map("customer_groups", g)
        body.customer_group_id = m or 0
        if m == nil then
            notes[#notes + 1] = ("customer group %d is not in the target store (no group of "
                .. "that name), so the customer is in no group"):format(g)
        end
    end
    local function channel(id)
        if tonumber(id) == nil then return id end
        local m = api.map("channels", id)
        if m or tonumber(id) == 1 then return m or id end
        notes[#notes + 1] = ("channel %s is not in the target store (no channel of that name)"
            .. ", so it is left out"):format(tostring(id))
        return nil
    end
    if body.origin_channel_id ~= nil then body.origin_channel_id = channel(body.origin_channel_id) end
    if type(body.channel_ids) == "table" then
        local keep = {}
        for _, c in ipairs(body.channel_ids) do keep[#keep + 1] = channel(c) end
        body.channel_ids = api.json.array(keep)
    end
end

-- What a backed-up customer becomes: the PUT body (scalars), and the
-- addresses, attributes and store credit written beside it.
local function shape(api, item)
    local rec = item.rec
    local it = { item = item, id = item.id, notes = {} }
    it.body = R.strip(rec, STRIP)
    target_ids(api, it.body, it.notes)
    it.addresses = type(rec.addresses) == "table" and rec.addresses or {}
    it.attributes = type(rec.attributes) == "table" and rec.attributes or {}
    it.credit = rec.store_credit_amounts
    return it
end

-- The members of the backup that the live customer does not match. Live
-- addresses and attributes the backup lacks are left alone, so they do not
-- count; origin_channel_id cannot change after create.
local function differences(api, it, live)
    local fields = R.differs(live, it.body, { "origin_channel_id", "email" })
    if lower(live.email) ~= lower(it.body.email) then fields[#fields + 1] = "email" end
    local have = {}
    for _, a in ipairs(live.addresses or {}) do have[address_key(a)] = true end
    it.new_addresses = {}
    for _, a in ipairs(it.addresses) do
        if not have[address_key(a)] then
            it.new_addresses[#it.new_addresses + 1] = address_body(api, a, live.id)
        end
    end
    if #it.new_addresses > 0 then fields[#fields + 1] = "addresses" end
    local values = {}
    for _, a in ipairs(live.attributes or {}) do values[a.attribute_id] = a.attribute_value end
    it.new_attributes = {}
    for _, a in ipairs(it.attributes) do
        if not R.equal(values[a.attribute_id], a.attribute_value) then
            it.new_attributes[#it.new_attributes + 1] = { customer_id = live.id,
                attribute_id = a.attribute_id, value = a.attribute_value }
        end
    end
    if #it.new_attributes > 0 then fields[#fields + 1] = "attributes" end
    if it.credit ~= nil and not R.equal(it.credit, live.store_credit_amounts) then
        fields[#fields + 1] = "store_credit_amounts"
    end
    table.sort(fields)
    return fields
end

local function list_of(api, query)
    query.include = INCLUDE
    query.limit = 250
    local status, body = api.get("/v3/customers", query)
    if status ~= 200 then
        error("looking customers up: " .. R.message(api, status, body), 0)
    end
    local data = R.data(api, body)
    return type(data) == "table" and data or {}
end

-- Finds each record's live customer: by its own id (same store), through
-- the id map, then by email. One email:in call; an id:in call only for the
-- records the email did not settle.
local function find_live(api, its)
    local emails = {}
    for _, it in ipairs(its) do
        if type(it.body.email) == "string" then emails[#emails + 1] = it.body.email end
        it.cands = {}
        if api.same_store then it.cands[#it.cands + 1] = it.id end
        local mapped = api.map("customers", it.id)
        if mapped ~= nil then it.cands[#it.cands + 1] = mapped end
    end
    local by_email = {}
    if #emails > 0 then
        for _, c in ipairs(list_of(api, { ["email:in"] = table.concat(emails, ",") })) do
            by_email[lower(c.email)] = c
        end
    end
    local ask, unsettled = {}, {}
    for _, it in ipairs(its) do
        local live = by_email[lower(it.body.email)]
        local settled = #it.cands == 0 and live ~= nil
        for _, c in ipairs(it.cands) do
            if live and tonumber(live.id) == tonumber(c) then settled = true end
        end
        if settled then it.live = live
        elseif #it.cands > 0 then
            unsettled[#unsettled + 1] = it
            for _, c in ipairs(it.cands) do ask[#ask + 1] = tostring(c) end
        else it.live = live end
    end
    if #ask == 0 then return end
    local by_id = {}
    for _, c in ipairs(list_of(api, { ["id:in"] = table.concat(ask, ",") })) do
        by_id[tonumber(c.id)] = c
    end
    for _, it in ipairs(unsettled) do
        for _, c in ipairs(it.cands) do
            if it.live == nil then it.live = by_id[tonumber(c)] end
        end
        if it.live == nil then it.live = by_email[lower(it.body.email)] end
    end
end

-- The batch indexes a v3 error names ("3.email" -> 4), with their messages.
local function failed_indexes(api, body)
    local ok, doc = pcall(api.json.decode, body or "")
    local out = {}
    if not ok or type(doc) ~= "table" or type(doc.errors) ~= "table" then return out end
    for k, v in pairs(doc.errors) do
        local i = tostring(k):match("^(%d+)")
        if i then
            local n = tonumber(i) + 1
            out[n] = (out[n] and out[n] .. "; " or "") .. tostring(k) .. ": " .. tostring(v)
        end
    end
    return out
end

local function note_of(it, extra)
    local notes = {}
    if extra then notes[1] = extra end
    for _, n in ipairs(it.notes) do notes[#notes + 1] = n end
    return table.concat(notes, "; ")
end

-- Sends a batch write; items the API names as failed are reported (or
-- handed to on_conflict) and the rest are sent again, until one succeeds.
-- Returns the items written and the answer's records.
local function send_batch(api, method, its, make, on_conflict)
    local todo = its
    for _ = 1, 3 do
        if #todo == 0 then return {}, {} end
        local bodies = {}
        for i, it in ipairs(todo) do bodies[i] = make(it) end
        local status, answer = api[method]("/v3/customers", api.json.array(bodies))
        if status == 200 or status == 201 then
            local data = R.data(api, answer)
            return todo, type(data) == "table" and data or {}
        end
        local bad = failed_indexes(api, answer)
        if next(bad) == nil or status == 413 then
            for _, it in ipairs(todo) do
                api.report(it.id, "failed", R.message(api, status, answer))
            end
            return {}, {}
        end
        local rest = {}
        for i, it in ipairs(todo) do
            if bad[i] == nil then rest[#rest + 1] = it
            elseif on_conflict and bad[i]:find("already in use", 1, true) then on_conflict(it)
            else api.report(it.id, "failed", ("HTTP %d: %s"):format(status, bad[i])) end
        end
        todo = rest
    end
    for _, it in ipairs(todo) do api.report(it.id, "failed", "the API refused the batch 3 times") end
    return {}, {}
end

local function create_body(api, it)
    local b = R.copy(it.body)
    b.authentication = { force_password_reset = true }
    b.trigger_account_created_notification = false
    local addrs = {}
    for i, a in ipairs(it.addresses) do
        addrs[i] = address_body(api, a, nil)
        addrs[i].customer_id = nil
    end
    b.addresses = api.json.array(addrs)
    local attrs = {}
    for i, a in ipairs(it.attributes) do
        attrs[i] = { attribute_id = a.attribute_id, value = a.attribute_value }
    end
    b.attributes = api.json.array(attrs)
    if it.credit ~= nil then b.store_credit_amounts = it.credit end
    return b
end

local function update_body(it)
    local b = R.copy(it.body)
    b.id = it.live.id
    b.origin_channel_id = nil
    if it.credit ~= nil then b.store_credit_amounts = it.credit end
    return b
end

-- Addresses and attribute values of updated customers: one call each for
-- the whole batch. A customer whose part fails is reported failed.
local function write_parts(api, its)
    local failed = {}
    local function part(method, path, member)
        local rows, owner = {}, {}
        for _, it in ipairs(its) do
            for _, row in ipairs(it[member]) do
                rows[#rows + 1] = row
                owner[#rows] = it
            end
        end
        if #rows == 0 then return end
        local status, answer = api[method](path, api.json.array(rows))
        if status ~= 200 and status ~= 201 then
            local msg = member .. ": " .. R.message(api, status, answer)
            for _, it in pairs(owner) do failed[it] = msg end
        end
    end
    part("post", "/v3/customers/addresses", "new_addresses")
    part("put", "/v3/customers/attribute-values", "new_attributes")
    return failed
end

local function write(api, batch)
    local its = {}
    for i, item in ipairs(batch) do its[i] = shape(api, item) end
    find_live(api, its)

    local creates, updates = {}, {}
    local function classify(it)
        if it.live == nil then creates[#creates + 1] = it; return end
        api.remember("customers", it.id, it.live.id)
        it.fields = differences(api, it, it.live)
        if #it.fields == 0 then return api.report(it.id, "unchanged", note_of(it)) end
        if api.dry_run then return api.report(it.id, "updated", note_of(it), it.fields) end
        updates[#updates + 1] = it
    end
    for _, it in ipairs(its) do classify(it) end

    if api.dry_run then
        for _, it in ipairs(creates) do api.report(it.id, "created", note_of(it, RESET)) end
        return
    end

    -- Someone holds the email after all (another write since the lookup):
    -- update that customer instead.
    local late = {}
    local made, data = send_batch(api, "post", creates, function(it) return create_body(api, it) end,
        function(it) late[#late + 1] = it end)
    local by_email = {}
    for _, c in ipairs(data) do by_email[lower(c.email)] = c end
    for _, it in ipairs(made) do
        local c = by_email[lower(it.body.email)]
        if c then api.remember("customers", it.id, c.id) end
        api.report(it.id, "created", note_of(it, RESET))
    end
    if #late > 0 then
        local emails = {}
        for i, it in ipairs(late) do emails[i] = it.body.email end
        local found = {}
        for _, c in ipairs(list_of(api, { ["email:in"] = table.concat(emails, ",") })) do
            found[lower(c.email)] = c
        end
        for _, it in ipairs(late) do
            it.live = found[lower(it.body.email)]
            if it.live == nil then
                api.report(it.id, "failed", "the email is in use, yet no customer has it")
            else classify(it) end
        end
    end

    local done = {}
    local put = {}
    for _, it in ipairs(updates) do
        if #R.differs(it.live, it.body, { "origin_channel_id" }) > 0 or
            (it.credit ~= nil and not R.equal(it.credit, it.live.store_credit_amounts)) then
            put[#put + 1] = it
        else done[#done + 1] = it end
    end
    local sent = send_batch(api, "put", put, update_body)
    for _, it in ipairs(sent) do done[#done + 1] = it end
    local failed = write_parts(api, done)
    for _, it in ipairs(done) do
        if failed[it] then api.report(it.id, "failed", failed[it])
        else api.report(it.id, "updated", note_of(it), it.fields) end
    end
end

return {
    contract = 1,
    type = "customers",
    version = "1.0.0",
    scope = "store_v2_customers_read_only",
    depends = { "customer_groups", "channels" },
    natural_key = { "email" },
    list = {
        api = "v3",
        path = "/customers",
        paging = "cursor",
        limit = 250,
        query = { include = INCLUDE },
    },
    restore = {
        batch = BATCH,
        -- the API allows 3 concurrent customer PUTs
        parallel = 3,
        -- what --only brings along when the target lacks it (groups and channels are mapped)
        needs = { customer_group_id = "customer_groups", channel_ids = "channels",
            origin_channel_id = "channels" },
        write = write,
    },
}
