-- orders: v2 orders with their products, shipping addresses, coupons and
-- shipments. The list gives link objects for the first three; the backup
-- holds the fetched arrays under the same member names, and adds
-- `shipments`.
--
-- Child calls are skipped where the order itself shows there is nothing to
-- fetch (the member is then []): no products when items_total is 0, no
-- addresses when shipping_address_count is 0, no shipments when
-- items_shipped is 0. Coupons are always fetched: no member of the order
-- says whether one was used (a free-shipping coupon can leave
-- coupon_discount at 0). So an order costs 2 to 4 requests.
-- Restore: orders get new numbers. An order the store already holds
-- (by its id in the same store, the id map, or external_order_id = the old
-- id) is never modified: equal is unchanged, different is kept. A missing
-- one is created through POST /v2/orders with its original date, status,
-- addresses and lines (by remapped product and variant, or as a custom line
-- by name and price when the product is gone), external_order_id = the old
-- id and external_source M-MIG (migrated history, not new sales). No
-- payment, refund or email. Its shipments follow against the new order's
-- address and line ids.
--
-- Stock: creating an order takes stock. Each batch reads the stock of the
-- products its new orders name before writing them, and puts exactly those
-- levels back afterwards (one inventory call), so restoring orders leaves
-- stock where it was: at the backup's values when products were restored
-- in the same run. Batches run one at a time, so no two read and reset the
-- same product at once. Costs: 1-3 lookups and one read of its lines per
-- order; a created order 1 POST, plus 2 reads and 1 POST per shipment when
-- it has any; per batch one product read and one inventory write.
local R = require("_restore")

local BILLING = { "first_name", "last_name", "company", "street_1", "street_2", "city", "state",
    "zip", "country", "country_iso2", "phone", "email" }
-- money members the API takes on create (the fake store ignores them)
local COSTS = { "shipping_cost_ex_tax", "shipping_cost_inc_tax", "handling_cost_ex_tax",
    "handling_cost_inc_tax", "wrapping_cost_ex_tax", "wrapping_cost_inc_tax", "discount_amount" }
local MIGRATED = "M-MIG"

local function num(v) return tonumber(v) or 0 end
local function money(v) return ("%.4f"):format(num(v)) end

local function list(api, path, query)
    local status, body = api.get(path, query)
    if status == 204 or status == 404 then return {} end
    if status ~= 200 then error(("reading %s: %s"):format(path, R.message(api, status, body)), 0) end
    local doc = R.data(api, body)
    return type(doc) == "table" and doc or {}
end

local function one(api, path)
    local status, body = api.get(path)
    if status == 404 or status == 204 then return nil end
    if status ~= 200 then error(("reading %s: %s"):format(path, R.message(api, status, body)), 0) end
    return api.json.decode(body)
end

local function address(a, extra)
    local out = {}
    for _, f in ipairs(BILLING) do out[f] = a[f] == nil and "" or a[f] end
    for _, f in ipairs(extra or {}) do out[f] = a[f] end
    return out
end

-- The customer in the target: the id map, the same id in the same store,
-- else none (a guest order), named in the notes.
local function customer_of(api, rec, notes)
    local cid = tonumber(rec.customer_id) or 0
    if cid == 0 then return 0 end
    local m = api.map("customers", cid)
    if m ~= nil then return m end
    if api.same_store then return cid end
    notes[#notes + 1] = ("customer %d is not in the target store: restored as a guest order")
        :format(cid)
    return 0
end

-- What decides "unchanged" against "kept": the members a restore sets.
-- Totals and server-set members (payment, ids, source) are left out: a
-- recreated order cannot carry them.
local function view(o, lines, customer)
    local out = { status_id = num(o.status_id), customer_id = num(customer),
        date_created = o.date_created, staff_notes = o.staff_notes or "",
        customer_message = o.customer_message or "",
        billing_address = address(o.billing_address or {}) }
    local ls = {}
    for _, l in ipairs(lines or {}) do
        ls[#ls + 1] = ("%s|%d|%s|%s"):format(tostring(l.name), num(l.quantity),
            money(l.price_ex_tax), money(l.price_inc_tax))
    end
    table.sort(ls)
    out.lines = table.concat(ls, "\n")
    return out
end

-- The order the target holds for a backed-up one, or nil.
local function find(api, id)
    if api.same_store then
        local o = one(api, "/v2/orders/" .. id)
        if o then return o end
    end
    local m = api.map("orders", id)
    if m ~= nil then
        local o = one(api, "/v2/orders/" .. m)
        if o then return o end
    end
    return list(api, "/v2/orders", { external_order_id = tostring(id) })[1]
end

-- The target's products named by the batch's lines (mapped ids), with
-- their variants and stock: {id -> product}.
local function products_of(api, ids)
    local out, chunk = {}, {}
    local function flush()
        if #chunk == 0 then return end
        local status, body = api.get("/v3/catalog/products",
            { ["id:in"] = table.concat(chunk, ","), include = "variants", limit = 250 })
        if status ~= 200 then
            error("reading products for order lines: " .. R.message(api, status, body), 0)
        end
        for _, p in ipairs(R.data(api, body) or {}) do out[tonumber(p.id)] = p end
        chunk = {}
    end
    for id in pairs(ids) do
        chunk[#chunk + 1] = tostring(id)
        if #chunk == 50 then flush() end
    end
    flush()
    return out
end

local function mapped_product(api, pid)
    pid = tonumber(pid) or 0
    if pid == 0 then return nil end
    local m = api.map("products", pid)
    if m == nil and api.same_store then m = pid end
    return m and tonumber(m)
end

local function mapped_variant(api, vid)
    vid = tonumber(vid) or 0
    if vid == 0 then return nil end
    local m = api.map("variants", vid)
    if m == nil and api.same_store then m = vid end
    return m and tonumber(m)
end

local function has_variant(p, vid)
    for _, v in ipairs(p.variants or {}) do
        if tonumber(v.id) == vid then return true end
    end
    return false
end

-- The variant of target product p a backed-up line names: the id map (or
-- the same id in the same store), else the same SKU, else the same option
-- labels, else the base variant of a product without options.
local function variant_of(api, l, p)
    local vid = mapped_variant(api, l.variant_id)
    if vid ~= nil and has_variant(p, vid) then return vid end
    local want, n = {}, 0
    for _, o in ipairs(l.product_options or {}) do
        want[tostring(o.display_name)] = tostring(o.display_value)
        n = n + 1
    end
    for _, v in ipairs(p.variants or {}) do
        if type(l.sku) == "string" and l.sku ~= "" and v.sku == l.sku then return v.id end
    end
    for _, v in ipairs(p.variants or {}) do
        local ov, same = v.option_values or {}, n > 0
        for _, o in ipairs(ov) do
            if want[tostring(o.option_display_name)] ~= tostring(o.label) then same = false end
        end
        if same and #ov == n then return v.id end
    end
    if n == 0 and p.base_variant_id ~= nil and p.base_variant_id ~= api.json.null then
        return p.base_variant_id
    end
    return nil
end

-- An order line for POST: by product and variant when the target has them,
-- else a custom line by name and price.
local function line_body(api, l, products, notes)
    local body = { quantity = num(l.quantity), price_ex_tax = num(l.price_ex_tax),
        price_inc_tax = num(l.price_inc_tax) }
    local pid = mapped_product(api, l.product_id)
    local p = pid and products[pid]
    local vid = p and variant_of(api, l, p)
    if p ~= nil and vid ~= nil then
        body.product_id = pid
        body.variant_id = vid
        return body, p
    end
    if p ~= nil then
        notes[#notes + 1] = ("line %s: product %s has no variant like the backup's, restored "
            .. "as a custom line"):format(tostring(l.name), tostring(l.product_id))
    elseif num(l.product_id) ~= 0 then
        notes[#notes + 1] = ("line %s: product %s is not in the target store, restored as a "
            .. "custom line"):format(tostring(l.name), tostring(l.product_id))
    end
    body.name = l.name
    body.sku = l.sku
    return body, nil
end

local function order_body(api, rec, products, notes)
    local body = { customer_id = customer_of(api, rec, notes), date_created = rec.date_created,
        status_id = rec.status_id, billing_address = address(rec.billing_address or {}),
        external_order_id = tostring(rec.id), external_source = MIGRATED,
        staff_notes = rec.staff_notes, customer_message = rec.customer_message,
        payment_method = rec.payment_method }
    for _, f in ipairs(COSTS) do body[f] = rec[f] end
    -- the channel is the target's own: mapped by name (channels); channel 1, the default
    -- storefront, exists everywhere; another one the target lacks is left out (channel 1)
    local ch = tonumber(rec.channel_id)
    if ch and not api.same_store then
        local m = api.map("channels", ch)
        if m == nil and ch ~= 1 then
            notes[#notes + 1] = ("channel %d is not in the target store (no channel of that "
                .. "name), so the order is in the default channel"):format(ch)
        end
        ch = m or (ch == 1 and 1 or nil)
    end
    body.channel_id = ch
    local ships = {}
    for i, a in ipairs(rec.shipping_addresses or {}) do
        ships[i] = address(a, { "shipping_method" })
    end
    if #ships > 0 then body.shipping_addresses = api.json.array(ships) end
    local lines, touched = {}, {}
    for i, l in ipairs(rec.products or {}) do
        local lb, p = line_body(api, l, products, notes)
        lines[i] = lb
        if p then touched[#touched + 1] = { product = p, variant_id = lb.variant_id } end
    end
    body.products = api.json.array(lines)
    return body, touched
end

-- Shipments of a new order, against its own line and address ids (lines
-- matched to the backup's by position: the API keeps the order they were
-- sent in). A shipment goes to the address its lines are on in the new
-- order: without consignments the API puts every line on the first
-- address, so a shipment of a multi-address order may move address (said
-- in the notes) or split in two.
local function ship(api, rec, new_id, notes)
    local shipments = rec.shipments or {}
    if #shipments == 0 then return 0 end
    local base = "/v2/orders/" .. math.floor(new_id)
    local lines = list(api, base .. "/products", { limit = 250 })
    local new_line = {}
    for i, l in ipairs(rec.products or {}) do new_line[num(l.id)] = lines[i] end
    local moved, sent = 0, 0
    for _, s in ipairs(shipments) do
        local by_addr, order = {}, {}
        for _, it in ipairs(s.items or {}) do
            local l = new_line[num(it.order_product_id)]
            if l == nil then
                error(("shipment %s: line %s has no counterpart in the new order")
                    :format(tostring(s.id), tostring(it.order_product_id)), 0)
            end
            local a = num(l.order_address_id)
            if by_addr[a] == nil then by_addr[a] = {}; order[#order + 1] = a end
            table.insert(by_addr[a], { order_product_id = l.id, quantity = num(it.quantity) })
        end
        for _, a in ipairs(order) do
            local body = { order_address_id = a, items = api.json.array(by_addr[a]),
                tracking_number = s.tracking_number, tracking_link = s.tracking_link,
                shipping_provider = s.shipping_provider, tracking_carrier = s.tracking_carrier,
                shipping_method = s.shipping_method, comments = s.comments }
            local status, answer = api.post(base .. "/shipments", body)
            if status ~= 200 and status ~= 201 then
                error(("shipment %s: %s"):format(tostring(s.id), R.message(api, status, answer)), 0)
            end
            sent = sent + 1
        end
        if #order > 1 or #(rec.shipping_addresses or {}) > 1 then moved = moved + 1 end
    end
    if moved > 0 then
        notes[#notes + 1] = ("%d shipments of this multi-address order are recorded against "
            .. "the address the API put their lines on"):format(moved)
    end
    return sent
end

local function create(api, rec, products, notes)
    local body, touched = order_body(api, rec, products, notes)
    local status, answer = api.post("/v2/orders", body)
    if status == 400 and body.customer_id ~= 0 and tostring(answer):find("customer", 1, true) then
        notes[#notes + 1] = ("customer %s does not exist in the target store: restored as a "
            .. "guest order"):format(tostring(body.customer_id))
        body.customer_id = 0
        status, answer = api.post("/v2/orders", body)
    end
    if status ~= 200 and status ~= 201 then return nil, R.message(api, status, answer), touched end
    local made = api.json.decode(answer)
    api.remember("orders", rec.id, made.id)
    local ok, err = pcall(ship, api, rec, made.id, notes)
    if not ok then notes[#notes + 1] = "not every shipment was restored: " .. tostring(err) end
    if #(rec.shipments or {}) > 0 then
        -- shipping moved the status on; put the backup's back on our own new order
        local o = one(api, "/v2/orders/" .. math.floor(made.id))
        if o and num(o.status_id) ~= num(rec.status_id) then
            api.put("/v2/orders/" .. math.floor(made.id), { status_id = rec.status_id })
        end
    end
    return made, nil, touched
end

-- Sets tracked stock back to the levels read before the orders were written.
local function put_stock_back(api, touched)
    local items, seen = {}, {}
    for _, t in ipairs(touched) do
        local p = t.product
        local key, item
        if p.inventory_tracking == "variant" then
            local vid = t.variant_id or p.base_variant_id
            for _, v in ipairs(p.variants or {}) do
                if tonumber(v.id) == tonumber(vid) then
                    key = "v" .. vid
                    item = { location_id = 1, variant_id = v.id, quantity = num(v.inventory_level) }
                end
            end
        elseif p.inventory_tracking == "product" then
            key = "p" .. p.id
            item = { location_id = 1, product_id = p.id, quantity = num(p.inventory_level) }
        end
        if key and not seen[key] then
            seen[key] = true
            items[#items + 1] = item
        end
    end
    if #items == 0 then return "" end
    local status, answer = api.put("/v3/inventory/adjustments/absolute",
        { items = api.json.array(items) })
    if status ~= 200 and status ~= 201 then
        local msg = "stock could NOT be put back after the orders took it: " ..
            R.message(api, status, answer)
        api.log("warn", "orders: " .. msg)
        return msg
    end
    api.log("info", ("orders: stock of %d products or variants put back to its level before "
        .. "the restored orders took it"):format(#items))
    return "stock taken by the new order was put back"
end

local function write(api, batch)
    local plans, want = {}, {}
    for _, item in ipairs(batch) do
        local plan = { item = item, notes = {} }
        local ok, err = pcall(function() plan.live = find(api, item.id) end)
        if not ok then plan.error = tostring(err) end
        plans[#plans + 1] = plan
        if ok and plan.live == nil then
            for _, l in ipairs(item.rec.products or {}) do
                local pid = mapped_product(api, l.product_id)
                if pid then want[pid] = true end
            end
        end
    end
    local products = next(want) and products_of(api, want) or {}

    local created, touched = {}, {}
    for _, plan in ipairs(plans) do
        local id, rec, live = plan.item.id, plan.item.rec, plan.live
        local customer = customer_of(api, rec, plan.notes)
        if plan.error then
            api.report(id, "failed", plan.error)
        elseif live ~= nil then
            api.remember("orders", id, live.id)
            local lines = list(api, ("/v2/orders/%d/products"):format(live.id), { limit = 250 })
            local fields = R.differs(view(live, lines, live.customer_id),
                view(rec, rec.products, customer))
            if #fields == 0 then api.report(id, "unchanged")
            else
                api.report(id, "kept", "differs from the backup in " .. table.concat(fields, ", ")
                    .. "; existing orders are never modified", fields)
            end
        elseif api.dry_run then
            api.report(id, "created", "would be a new order with a new number; "
                .. "external_order_id keeps the old one")
        else
            plan.notes = {}
            local ok, made, err, t = pcall(create, api, rec, products, plan.notes)
            if not ok then api.report(id, "failed", tostring(made))
            elseif made == nil then api.report(id, "failed", err)
            else
                for _, x in ipairs(t) do touched[#touched + 1] = x end
                plan.made = made
                created[#created + 1] = plan
            end
        end
    end
    if #created == 0 then return end
    local stock = put_stock_back(api, touched)
    for _, plan in ipairs(created) do
        local notes = { ("new order number %d (order numbers change; external_order_id keeps "
            .. "the old one)"):format(plan.made.id) }
        for _, n in ipairs(plan.notes) do notes[#notes + 1] = n end
        if stock ~= "" then notes[#notes + 1] = stock end
        api.report(plan.item.id, "created", table.concat(notes, "; "))
    end
end

local function positive(v)
    return tonumber(v) ~= nil and tonumber(v) > 0
end

return {
    contract = 1,
    type = "orders",
    version = "1.0.0",
    scope = "store_v2_orders_read_only",
    depends = { "customers", "products", "channels" },
    natural_key = { "external_order_id" },
    list = {
        api = "v2",
        path = "/orders",
        paging = "keyset",
        limit = 250,
        query = { sort = "id:asc" },
        keyset = {
            from = "min_id",
            upto = "max_id",
            newest = { sort = "id:desc" },
        },
    },
    restore = {
        batch = 10,
        needs = { customer_id = "customers", ["products.product_id"] = "products",
            channel_id = "channels" },
        -- one batch at a time: stock is read before and set back after
        parallel = 1,
        write = write,
    },
    children = function(order)
        local base = "/orders/" .. math.floor(order.id)
        local function call(member, needed)
            if needed then
                return { member = member, path = base .. "/" .. member }
            end
            return { member = member, empty = true }
        end
        return {
            call("products", positive(order.items_total)),
            call("shipping_addresses", positive(order.shipping_address_count)),
            call("coupons", true),
            call("shipments", positive(order.items_shipped)),
        }
    end,
}
